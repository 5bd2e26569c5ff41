"""Dumps load into replicas, between our commands and django-cqrs's, both ways.

Our commands run with the test project's settings; django-cqrs's run with the peer
projects' settings (tests/peers) in scratch databases.
"""

import json

import pytest

from tests.acceptance.ops.conftest import PEER_MASTER, PEER_REPLICA, peer_sql
from tests.testproject.master import models as master
from tests.testproject.replica import models as replica

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, pytest.mark.slow]


def _authors(count=12):
    authors = [master.Author.objects.create(name=f"author {i} ✓") for i in range(count)]
    for author in authors[::4]:
        author.name += " (updated)"
        author.save()
    return sorted(master.Author.objects.values_list("id", "name", "cqrs_revision"))


def _replica_authors():
    return sorted(replica.AuthorRef.objects.values_list("id", "name", "cqrs_revision"))


def test_our_dump__loads_into_our_replica_through_a_pipe(services):
    expected = _authors()
    result = services.pipeline(
        ["cqrs_bulk_dump", "--cqrs-id", "author", "-o", "-", "--batch", "5"],
        ["cqrs_bulk_load", "-i", "-", "--batch", "5"],
    )
    assert result.returncode == 0, result.stderr
    assert "12 instance(s) saved" in result.stderr and "12 instance(s) loaded" in result.stderr
    assert _replica_authors() == expected


def test_django_cqrs_dump__loads_into_our_replica(services, peer_database, tmp_path):
    peer = peer_database(PEER_MASTER)
    peer_sql(
        peer,
        "INSERT INTO peer_master_author (id, name, cqrs_revision, cqrs_updated) "
        "SELECT i, 'peer ' || i, i % 3, now() FROM generate_series(1, 30) AS i",
    )
    dump = tmp_path / "peer-author.dump"
    made = services.django(
        "cqrs_bulk_dump",
        "--cqrs-id",
        "author",
        "-o",
        str(dump),
        settings=PEER_MASTER,
        CQRS_PEER_DB_NAME=peer,
    )
    assert made.returncode == 0, made.stderr
    assert "30 instance(s) saved" in made.stderr  # django-cqrs's own words: its command ran

    loaded = services.django("cqrs_bulk_load", "-i", str(dump))
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stderr.endswith("Done!\n30 instance(s) loaded.\n")
    expected = sorted(peer_sql(peer, "SELECT id, name, cqrs_revision FROM peer_master_author"))
    assert _replica_authors() == expected


def test_our_dump__loads_with_django_cqrs_command(services, peer_database, tmp_path):
    expected = _authors()
    master.Publisher.objects.create(name="Pub", book_count=7)
    peer = peer_database(PEER_REPLICA)
    for cqrs_id in ("author", "publisher"):
        dump = tmp_path / f"{cqrs_id}.dump"
        made = services.django("cqrs_bulk_dump", "--cqrs-id", cqrs_id, "-o", str(dump))
        assert made.returncode == 0, made.stderr
        loaded = services.django(
            "cqrs_bulk_load", "-i", str(dump), settings=PEER_REPLICA, CQRS_PEER_DB_NAME=peer
        )
        assert loaded.returncode == 0, loaded.stderr
        assert "instance(s) loaded." in loaded.stderr  # django-cqrs's own words
    rows = peer_sql(peer, "SELECT id, name, cqrs_revision FROM peer_replica_authorref")
    assert sorted(rows) == expected
    assert peer_sql(peer, "SELECT title, books FROM peer_replica_publisherref") == [("PUB", 7)]


def test_our_diff_stream__is_read_by_django_cqrs_replica(services, peer_database):
    _authors(5)
    peer = peer_database(PEER_REPLICA)
    ours = services.django("cqrs_diff_master", "--cqrs-id", "author")
    assert ours.returncode == 0, ours.stderr
    theirs = services.django(
        "cqrs_diff_replica", settings=PEER_REPLICA, stdin=ours.stdout, CQRS_PEER_DB_NAME=peer
    )
    assert theirs.returncode == 0, theirs.stderr
    header, *packages = theirs.stdout.splitlines()
    assert header == f"{ours.stdout.splitlines()[0]},{services.queue}"
    resync = sorted(pk for line in packages for pk in json.loads(line))
    assert resync == sorted(master.Author.objects.values_list("id", flat=True))
