"""The lines scripts read from the commands are django-cqrs's, run side by side with its.

Our commands run with the test project's settings, django-cqrs's with the peer projects'.
"""

import json

import pytest

from tests.acceptance.ops.conftest import PEER_MASTER, PEER_REPLICA, peer_sql
from tests.testproject.master import models as master

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, pytest.mark.slow]

HEADER = "nope,2024-01-01 00:00:00+00:00"

# (command and arguments, stdin, the peer project whose django-cqrs runs it)
WRONG_ID = [
    (["cqrs_bulk_dump", "--cqrs-id", "nope", "-o", "-"], None, PEER_MASTER),
    (["cqrs_diff_master", "--cqrs-id", "nope"], None, PEER_MASTER),
    (["cqrs_deleted_diff_master"], f"{HEADER}\n[1]\n", PEER_MASTER),
    (["cqrs_bulk_load", "-i", "-"], "nope\n{}\n", PEER_REPLICA),
    (["cqrs_diff_replica"], f"{HEADER}\n[[1, 0]]\n", PEER_REPLICA),
    (["cqrs_deleted_diff_replica", "--cqrs-id", "nope"], None, PEER_REPLICA),
    (["cqrs_deleted_sync_replica"], f"{HEADER}\n[1]\n", PEER_REPLICA),
]


def _last(stderr):
    return stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("args, stdin, peer", WRONG_ID, ids=[w[0][0] for w in WRONG_ID])
def test_unknown_cqrs_id__same_error_line_and_status_as_django_cqrs(
        services, peer_database, args, stdin, peer):
    theirs = services.django(*args, settings=peer, stdin=stdin,
                             CQRS_PEER_DB_NAME=peer_database(peer))
    ours = services.django(*args, stdin=stdin)
    assert theirs.returncode == ours.returncode == 1
    assert _last(theirs.stderr) == _last(ours.stderr) == "CommandError: Wrong CQRS ID: nope!"


def test_bulk_load_of_an_empty_file__same_line_as_django_cqrs(services, peer_database, tmp_path):
    empty = tmp_path / "empty.dump"
    empty.write_text("")
    theirs = services.django("cqrs_bulk_load", "-i", str(empty), settings=PEER_REPLICA,
                             CQRS_PEER_DB_NAME=peer_database(PEER_REPLICA))
    ours = services.django("cqrs_bulk_load", "-i", str(empty))
    assert theirs.returncode == ours.returncode == 1
    assert _last(theirs.stderr) == _last(ours.stderr) == f"CommandError: File {empty} is empty!"


def test_bulk_dump_over_a_file__same_line_as_django_cqrs(services, peer_database, tmp_path):
    existing = tmp_path / "author.dump"
    existing.write_text("author\n")
    theirs = services.django("cqrs_bulk_dump", "--cqrs-id", "author", "-o", str(existing),
                             settings=PEER_MASTER, CQRS_PEER_DB_NAME=peer_database(PEER_MASTER))
    ours = services.django("cqrs_bulk_dump", "--cqrs-id", "author", "-o", str(existing))
    assert theirs.returncode == ours.returncode == 1
    assert _last(theirs.stderr) == _last(ours.stderr) == f"CommandError: File {existing} exists!"


def test_dump_and_load__closing_lines_are_django_cqrs_lines(services, peer_database, tmp_path):
    for i in range(7):
        master.Author.objects.create(name=f"a{i}")
    peer_master = peer_database(PEER_MASTER)
    peer_sql(peer_master, "INSERT INTO peer_master_author (id, name, cqrs_revision, cqrs_updated) "
                          "SELECT i, 'peer ' || i, 0, now() FROM generate_series(1, 7) AS i")
    ours_dump, theirs_dump = tmp_path / "ours.dump", tmp_path / "theirs.dump"
    ours = services.django("cqrs_bulk_dump", "--cqrs-id", "author", "-o", str(ours_dump))
    theirs = services.django("cqrs_bulk_dump", "--cqrs-id", "author", "-o", str(theirs_dump),
                             settings=PEER_MASTER, CQRS_PEER_DB_NAME=peer_master)
    assert ours.returncode == theirs.returncode == 0
    closing = "Done!\n7 instance(s) saved.\n7 instance(s) processed."
    assert ours.stderr.strip().endswith(closing) and theirs.stderr.strip().endswith(closing)

    ours = services.django("cqrs_bulk_load", "-i", str(ours_dump))
    theirs = services.django("cqrs_bulk_load", "-i", str(ours_dump), settings=PEER_REPLICA,
                             CQRS_PEER_DB_NAME=peer_database(PEER_REPLICA))
    assert ours.returncode == theirs.returncode == 0
    closing = "Done!\n7 instance(s) loaded."
    assert ours.stderr.strip().endswith(closing) and theirs.stderr.strip().endswith(closing)


def test_diff_middle_steps__per_line_stderr_as_django_cqrs(services, peer_database):
    ids = [master.Author.objects.create(name=f"a{i}").pk for i in range(3)]
    stream = services.django("cqrs_diff_master", "--cqrs-id", "author").stdout
    ours = services.django("cqrs_diff_replica", stdin=stream)
    theirs = services.django("cqrs_diff_replica", stdin=stream, settings=PEER_REPLICA,
                             CQRS_PEER_DB_NAME=peer_database(PEER_REPLICA))
    line = f"PK to resync: {set(ids)}"
    assert line in theirs.stderr.splitlines() and line in ours.stderr.splitlines()
    # The same keys on each line; django-cqrs writes them in a Python set's order, which
    # follows the hash table (352 before 350 for {350, 351, 352}), ours in the master's.
    ours_keys = [sorted(json.loads(line)) for line in ours.stdout.splitlines()[1:]]
    assert ours_keys == [sorted(json.loads(line)) for line in theirs.stdout.splitlines()[1:]]
    assert ours_keys == [sorted(ids)]
    assert ours.stdout.splitlines()[1:] == [json.dumps(sorted(ids), separators=(",", ":"))]
