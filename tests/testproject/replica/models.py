"""Replica models of the test project, mirroring the master models by CQRS_ID.

Besides plain copies there are: a mapped model (CQRS_MAPPING), one for the serializer
master `publisher`, custom serialization, a raw replica, CQRS_META and
CQRS_ONLY_DIRECT_SYNCS models, and two whose handlers fail or stall on request (they
read their instructions from files under $CQRS_TEST_CONTROL_DIR, so that a test can
steer a worker running in another process).
"""

import os
import time
from pathlib import Path

from django.db import models

from cqrs_outbox.metas import ReplicaMeta
from cqrs_outbox.mixins import RawReplicaMixin, ReplicaMixin


def control_dir() -> Path:
    return Path(os.environ.get("CQRS_TEST_CONTROL_DIR", "/tmp/cqrs_test_control"))


class AuthorRef(ReplicaMixin):
    CQRS_ID = "author"

    id = models.IntegerField(primary_key=True)
    name = models.CharField(max_length=100)


class AllFieldsRef(ReplicaMixin):
    CQRS_ID = "all_fields"

    id = models.IntegerField(primary_key=True)
    int_field = models.IntegerField(default=0)
    bool_field = models.BooleanField(default=False)
    char_field = models.CharField(max_length=100, default="")
    text_field = models.TextField(default="")
    date_field = models.DateField(null=True)
    datetime_field = models.DateTimeField(null=True)
    decimal_field = models.DecimalField(max_digits=10, decimal_places=2, null=True)
    float_field = models.FloatField(null=True)
    url_field = models.URLField(default="")
    uuid_field = models.UUIDField(null=True)
    json_field = models.JSONField(null=True)
    # Events of different models may arrive in any order: no database constraint.
    author = models.ForeignKey(AuthorRef, null=True, on_delete=models.DO_NOTHING,
                               db_constraint=False)


class UUIDKeyedRef(ReplicaMixin):
    CQRS_ID = "uuid_keyed"

    id = models.UUIDField(primary_key=True)
    name = models.CharField(max_length=100)


class StrKeyedRef(ReplicaMixin):
    CQRS_ID = "str_keyed"

    code = models.CharField(max_length=50, primary_key=True)
    name = models.CharField(max_length=100)


class PublisherRef(ReplicaMixin):
    """Replica of a master with CQRS_SERIALIZER: its fields are the serializer's keys."""

    CQRS_ID = "publisher"

    id = models.IntegerField(primary_key=True)
    title = models.CharField(max_length=100)
    books = models.IntegerField(default=0)


class TrackedRef(ReplicaMixin):
    """Mapped: the master's `name` and `status` land in `title` and `state`."""

    CQRS_ID = "tracked"
    CQRS_MAPPING = {"id": "id", "name": "title", "status": "state"}

    id = models.IntegerField(primary_key=True)
    title = models.CharField(max_length=100)
    state = models.CharField(max_length=20)


class PartialRef(ReplicaMixin):
    CQRS_ID = "partial"

    id = models.IntegerField(primary_key=True)
    name = models.CharField(max_length=100)


class FilteredRef(ReplicaMixin):
    """Custom serialization: the handlers decide how master data becomes a row."""

    CQRS_ID = "filtered"
    CQRS_CUSTOM_SERIALIZATION = True

    id = models.IntegerField(primary_key=True)
    shout = models.CharField(max_length=100)

    @classmethod
    def cqrs_create(cls, sync, mapped_data, previous_data=None, meta=None):
        return cls.objects.create(
            id=mapped_data["id"],
            shout=mapped_data["name"].upper(),
            cqrs_revision=mapped_data["cqrs_revision"],
            cqrs_updated=mapped_data["cqrs_updated"],
        )

    def cqrs_update(self, sync, mapped_data, previous_data=None, meta=None):
        self.shout = mapped_data["name"].upper()
        self.cqrs_revision = mapped_data["cqrs_revision"]
        self.cqrs_updated = mapped_data["cqrs_updated"]
        self.save()
        return self


class WithDeleteDataRef(ReplicaMixin):
    """Receives CQRS_META and keeps the last meta it got."""

    CQRS_ID = "with_delete_data"
    CQRS_META = True

    id = models.IntegerField(primary_key=True)
    name = models.CharField(max_length=100)
    last_meta = models.JSONField(null=True)

    @classmethod
    def cqrs_create(cls, sync, mapped_data, previous_data=None, meta=None):
        return super().cqrs_create(sync, {**mapped_data, "last_meta": meta}, previous_data, meta)

    def cqrs_update(self, sync, mapped_data, previous_data=None, meta=None):
        return super().cqrs_update(sync, {**mapped_data, "last_meta": meta}, previous_data, meta)


class DirectOnlyRef(ReplicaMixin):
    """Takes SYNCs only when they are aimed at this replica's queue."""

    CQRS_ID = "direct_only"
    CQRS_ONLY_DIRECT_SYNCS = True

    id = models.IntegerField(primary_key=True)
    name = models.CharField(max_length=100)


class RawLog(models.Model):
    """What the raw replica received, one row per event."""

    signal_type = models.CharField(max_length=8)
    pk_value = models.CharField(max_length=100)
    data = models.JSONField()


class RawRef(RawReplicaMixin):
    CQRS_ID = "raw"

    @classmethod
    def cqrs_save(cls, master_data, previous_data=None, sync=False, meta=None):
        signal_type = "SYNC" if sync else "SAVE"
        return RawLog.objects.create(
            signal_type=signal_type, pk_value=str(master_data["id"]), data=master_data
        )

    @classmethod
    def cqrs_delete(cls, master_data, meta=None):
        return RawLog.objects.create(
            signal_type="DELETE", pk_value=str(master_data["id"]), data=master_data
        )


ReplicaMeta.register(RawRef)


class NoTableRef(ReplicaMixin):
    """Abstract, so it has no table: django-cqrs registers it all the same, and its
    events reach its own handlers."""

    CQRS_ID = "no_table"
    CQRS_NO_DB_OPERATIONS = True

    class Meta:
        abstract = True

    @classmethod
    def cqrs_save(cls, master_data, previous_data=None, sync=False, meta=None):
        return RawLog.objects.create(
            signal_type="SYNC" if sync else "SAVE", pk_value=str(master_data["id"]),
            data=master_data,
        )

    @classmethod
    def cqrs_delete(cls, master_data, meta=None):
        return RawLog.objects.create(
            signal_type="DELETE", pk_value=str(master_data["id"]), data=master_data
        )


class FlakyRef(ReplicaMixin):
    """Fails while told to: `name` 'fail:N' fails the first N attempts of a row; 'fail:always'
    fails until the file `fixed` exists in the control directory."""

    CQRS_ID = "flaky"

    id = models.IntegerField(primary_key=True)
    name = models.CharField(max_length=100)
    attempts = models.IntegerField(default=0)

    @classmethod
    def cqrs_create(cls, sync, mapped_data, previous_data=None, meta=None):
        attempt = cls._attempt(mapped_data)
        return super().cqrs_create(sync, {**mapped_data, "attempts": attempt}, previous_data)

    @classmethod
    def _attempt(cls, mapped_data):
        directory = control_dir()
        directory.mkdir(parents=True, exist_ok=True)
        counter = directory / f"flaky-{mapped_data['id']}.attempts"
        with counter.open("a") as handle:
            handle.write("x")
        attempt = len(counter.read_text())
        mode = mapped_data["name"].split(":", 1)[1] if ":" in mapped_data["name"] else "0"
        if mode == "always" and not (directory / "fixed").exists():
            raise RuntimeError(f"flaky {mapped_data['id']} always fails (attempt {attempt})")
        if mode.isdigit() and attempt <= int(mode):
            raise RuntimeError(f"flaky {mapped_data['id']} fails attempt {attempt}")
        return attempt


class SleepyRef(ReplicaMixin):
    """Stalls the first time it is applied: writes `sleepy.entered` and sleeps `delay` s."""

    CQRS_ID = "sleepy"

    id = models.IntegerField(primary_key=True)
    name = models.CharField(max_length=100)

    @classmethod
    def cqrs_create(cls, sync, mapped_data, previous_data=None, meta=None):
        marker = control_dir() / "sleepy.entered"
        if not marker.exists():
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text("entered")
            time.sleep(float(mapped_data["name"]))
        return super().cqrs_create(sync, mapped_data, previous_data)


class ShelfRef(ReplicaMixin):
    """The replica of `shelf`, a master written through update() and the bulk calls."""

    CQRS_ID = "shelf"

    id = models.IntegerField(primary_key=True)
    name = models.CharField(max_length=100)
    size = models.IntegerField(default=0)
    author = models.IntegerField(null=True)
