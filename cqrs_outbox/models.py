"""Tables of the app: the outbox (master), relay leases, and replica tombstones.

Their names and meaning are the contract in `cqrs_outbox.core.contract`; the relay reads
and writes them with SQL of its own and never imports these classes.
"""

from django.db import models
from django.utils import timezone

from cqrs_outbox.core import contract, wire


class OutboxEvent(models.Model):
    """One CQRS event, written in the same transaction as the change it describes."""

    STATUS_CHOICES = [(s, s) for s in contract.STATUSES]
    SIGNAL_CHOICES = [(s, s) for s in wire.SIGNAL_TYPES]

    id = models.BigAutoField(primary_key=True)
    cqrs_id = models.CharField(max_length=255)
    instance_pk = models.CharField(max_length=255)
    signal_type = models.CharField(max_length=8, choices=SIGNAL_CHOICES)
    revision = models.BigIntegerField()
    partition = models.SmallIntegerField()
    routing_key = models.CharField(max_length=512)
    payload = models.TextField(help_text="The exact JSON body the relay publishes.")
    correlation_id = models.CharField(max_length=255, null=True, blank=True)
    signature = models.CharField(
        max_length=255, null=True, blank=True,
        help_text="The cqrs-signature header sent with the payload: scheme;key id;signature.",
    )
    status = models.CharField(
        max_length=10, choices=STATUS_CHOICES, default=contract.STATUS_PENDING
    )
    attempts = models.IntegerField(default=0)
    available_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)
    # W3C trace context of the save (with the `otel` extra), sent on as message headers.
    traceparent = models.CharField(max_length=64, null=True, blank=True)
    tracestate = models.CharField(max_length=512, null=True, blank=True)
    # When the broker returned the event as unroutable (no queue bound to its routing
    # key); cleared when it is replayed. Such an event is also `published`.
    returned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = contract.OUTBOX_TABLE
        verbose_name = "outbox event"
        ordering = ["-id"]
        permissions = [("replay_outboxevent", "Can replay and retry outbox events")]
        indexes = [
            # The relay's hot path: pending rows of a partition in id order. Partial, so
            # it stays as small as the backlog however large the table grows.
            models.Index(
                fields=["partition", "id"],
                name="cqrs_outbox_pending_idx",
                condition=models.Q(status=contract.STATUS_PENDING),
            ),
            models.Index(
                fields=["published_at"],
                name="cqrs_outbox_published_idx",
                condition=models.Q(status=contract.STATUS_PUBLISHED),
            ),
            # Returned events per routing key, and the admin's "returned" filter: partial,
            # so it holds only the returned rows (migration 0012).
            models.Index(
                fields=["routing_key", "id"],
                name="cqrs_outbox_returned_idx",
                condition=models.Q(returned_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.signal_type} {self.cqrs_id}:{self.instance_pk} r{self.revision} #{self.id}"


class Lease(models.Model):
    """Which relay owns a partition of the outbox, until when."""

    partition = models.SmallIntegerField(primary_key=True)
    owner = models.CharField(max_length=255, blank=True, default="")
    token = models.CharField(max_length=64, blank=True, default="")
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = contract.LEASE_TABLE
        ordering = ["partition"]

    def __str__(self) -> str:
        return f"partition {self.partition}: {self.owner or 'free'}"


class Tombstone(models.Model):
    """A replica's memory of a deleted row, so an older SAVE cannot bring it back.

    It stays when the row is created again, so that late events of the deleted life
    stay refused (`cqrs_outbox.replica.rules`).
    """

    id = models.BigAutoField(primary_key=True)
    cqrs_id = models.CharField(max_length=255)
    instance_pk = models.CharField(max_length=255)
    revision = models.BigIntegerField()
    # The DELETE's cqrs_updated: the master's clock when it deleted the row.
    updated = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        db_table = contract.TOMBSTONE_TABLE
        constraints = [
            models.UniqueConstraint(
                fields=["cqrs_id", "instance_pk"], name="cqrs_outbox_tombstone_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.cqrs_id}:{self.instance_pk} deleted at r{self.revision}"


class CapturedChange(models.Model):
    """A row change the database saw without an outbox event (capture mode 'database').

    The capture triggers write these rows (`cqrs_outbox.master.triggers`); the relay, the
    Celery drain task or `cqrs_capture` turns each into an event and deletes it
    (`cqrs_outbox.master.outside`).
    """

    KINDS = [("I", "insert"), ("U", "update"), ("D", "delete")]

    id = models.BigAutoField(primary_key=True)
    cqrs_id = models.CharField(max_length=255)
    table_name = models.CharField(max_length=255)
    instance_pk = models.CharField(max_length=255)
    kind = models.CharField(max_length=1, choices=KINDS)
    # For a delete: the row's cqrs_revision when it was deleted.
    revision = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = contract.CAPTURE_TABLE
        verbose_name = "change captured outside the ORM"
        indexes = [
            # The clearing trigger of MySQL/MariaDB and SQLite finds a row's captures by it.
            models.Index(fields=["cqrs_id", "instance_pk"], name="cqrs_outbox_capture_row_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.cqrs_id}:{self.instance_pk} ({self.table_name})"
