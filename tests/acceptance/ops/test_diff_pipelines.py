"""A replica that lost rows is repaired, and stale rows removed, by the diff pipelines.

Each step is a process of its own, joined by shell pipes as an operator would type them;
the repairs travel as SYNC events through the outbox, the relay, RabbitMQ and the
replica's consumer.
"""

import pytest

from cqrs_outbox.models import OutboxEvent
from tests.support.waiting import wait_until
from tests.testproject.master import models as master
from tests.testproject.replica import models as replica

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.broker,
    pytest.mark.slow,
]


def _master():
    return sorted(master.Author.objects.values_list("id", "name", "cqrs_revision"))


def _replica():
    return sorted(replica.AuthorRef.objects.values_list("id", "name", "cqrs_revision"))


@pytest.fixture
def mirrored():
    """Twenty master authors (some updated) and a replica that holds them all."""
    authors = [master.Author.objects.create(name=f"author {i}") for i in range(20)]
    for author in authors[::3]:
        author.name += " (updated)"
        author.save()
    for author in master.Author.objects.all():
        replica.AuthorRef.cqrs_save(author.to_cqrs_dict())
    OutboxEvent.objects.all().delete()
    assert _replica() == _master()
    return authors


def test_diff_pipeline__repairs_lost_and_stale_replica_rows(services, broker, mirrored):
    lost = [mirrored[1].pk, mirrored[7].pk, mirrored[19].pk]
    replica.AuthorRef.objects.filter(id__in=lost).delete()
    replica.AuthorRef.objects.filter(id=mirrored[3].pk).update(name="stale", cqrs_revision=0)
    assert _replica() != _master()

    with services.consumer() as consumer_log:
        wait_until(lambda: broker.consumers(services.queue), "the consumer to start")
        result = services.pipeline(
            ["cqrs_diff_master", "--cqrs-id", "author", "--batch", "7"],
            ["cqrs_diff_replica"],
            ["cqrs_diff_sync"],
        )
        assert result.returncode == 0, result.stderr
        assert "Done!\n4 instance(s) synced.\n4 instance(s) processed." in result.stdout
        assert "4 SYNC event(s) written to the outbox" in result.stderr
        assert "4 of 20 row(s) to resync" in result.stderr
        routing = set(OutboxEvent.objects.values_list("signal_type", "routing_key"))
        assert routing == {("SYNC", f"cqrs.{services.queue}.author")}

        services.relay_once()
        try:
            wait_until(lambda: _replica() == _master(), "the replica to be whole again")
        except AssertionError:
            raise AssertionError(consumer_log()) from None


def test_deleted_pipeline__removes_rows_the_master_no_longer_has(services, mirrored):
    master.Author.objects.filter(id__in=[mirrored[4].pk, mirrored[5].pk]).delete()
    OutboxEvent.objects.all().delete()  # the DELETE events were "lost"
    assert len(_replica()) == 20

    result = services.pipeline(
        ["cqrs_deleted_diff_replica", "--cqrs-id", "author", "--batch", "6"],
        ["cqrs_deleted_diff_master"],
        ["cqrs_deleted_sync_replica"],
    )
    assert result.returncode == 0, result.stderr
    assert "2 of 20 row(s) gone from the master" in result.stderr
    assert "Done: 2 stale row(s) deleted." in result.stderr
    assert _replica() == _master()
    assert OutboxEvent.objects.count() == 0  # the replica repaired itself; no event needed
