"""Map `instance_data` onto a replica model's fields, as django-cqrs does, and check it.

Keys the model has no field for are dropped (a replica may mirror only some fields of
its master, and a master may add fields before its replicas do). What cannot be applied
is a `BadMessage` naming the key: a missing primary key, revision or required field, a
CQRS_MAPPING source key the data lacks, or a value the field cannot hold, including an
integer outside the column's range and a string longer than the column. Values are only
converted and checked when the mixin's own handlers write the row: a model that
overrides `cqrs_create` / `cqrs_update` gets them as sent, as django-cqrs hands them.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connections, models, router

from cqrs_outbox.core import wire
from cqrs_outbox.core.errors import BadMessage
from cqrs_outbox.replica import handlers, nonfinite, queries, sentences

QUOTE_CHARS = 60  # characters of a refused value quoted in a reason


@dataclass(frozen=True)
class Fields:
    """What the apply path needs to know about a replica model's fields, computed once."""

    by_name: dict
    pk_name: str
    pk_attname: str
    required: frozenset
    attnames: dict  # field name -> attname
    ranges: dict  # field name -> (lowest, highest) of integer columns
    # field name -> _Plain, for fields whose conversion of a value of one exact type
    # (int, str) is that value itself: only its range or length is checked.
    plain: dict
    # Whether cqrs_updated is Django's own DateTimeField, which (with USE_TZ) reads an
    # ISO-8601 text as `updated_at` does.
    updated_as_parsed: bool


@dataclass(frozen=True)
class _Plain:
    """A field that takes values of `kind` as they are, within `low`..`high` (integers)
    or `max_length` characters (text)."""

    attname: str
    kind: type
    low: int | None = None
    high: int | None = None
    max_length: int | None = None

    def takes(self, value: Any) -> bool:
        """Tell whether `value` goes in unconverted and fits (else the full path decides,
        and says why it does not fit)."""
        if type(value) is not self.kind:
            return False
        if self.kind is str:
            return self.max_length is None or len(value) <= self.max_length
        return (self.low is None or value >= self.low) and \
            (self.high is None or value <= self.high)


@dataclass  # one per event: not frozen, which doubles the cost of making one
class Change:
    """One event mapped onto a model: the row's key, revision and (for saves) values."""

    signal_type: str
    pk: Any
    revision: int
    mapped: dict  # by field name, values as sent (what cqrs_create/cqrs_update receive)
    # By attname, converted; only when the mixin's own handlers write the row.
    values: dict | None = None
    updated: datetime.datetime | None = None  # the master's cqrs_updated, if readable
    # The primary key as text, as tombstones and locks store it: asked for several times
    # an event, so made once.
    key: str = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.key = str(self.pk)


@functools.cache
def fields(model: type[models.Model]) -> Fields:
    """Return the field facts of `model`."""
    concrete = model._meta.concrete_fields
    pk = model._meta.pk
    required = {
        f.name for f in concrete if not f.null and not f.has_default() and not f.primary_key
    }
    ranges = _integer_ranges(model, concrete)
    by_name = {f.name: f for f in concrete}
    return Fields(
        by_name=by_name,
        pk_name=pk.name,
        pk_attname=pk.attname,
        required=frozenset(required),
        attnames={f.name: f.attname for f in concrete},
        ranges=ranges,
        plain=_plain_fields(concrete, ranges),
        updated_as_parsed=wire.UPDATED_KEY in by_name and
        type(by_name[wire.UPDATED_KEY]).to_python is models.DateTimeField.to_python,
    )


# Django's conversions that hand a value of one type back unchanged: IntegerField's
# int(value) for an int (every integer and auto field inherits it), CharField's and
# TextField's for a str. A field overriding to_python is not among them.
_UNCHANGED = {
    models.IntegerField.to_python: int,
    models.CharField.to_python: str,
    models.TextField.to_python: str,
}


def _plain_fields(concrete: Any, ranges: dict) -> dict:
    found = {}
    for field in concrete:
        kind = _UNCHANGED.get(type(field).to_python)
        if kind is None:
            continue
        low, high = ranges.get(field.name, (None, None))
        found[field.name] = _Plain(field.attname, kind, low, high,
                                   getattr(field, "max_length", None) or None)
    return found


def _integer_ranges(model: type[models.Model], concrete: Any) -> dict:
    ops = connections[router.db_for_write(model)].ops
    found = {}
    for field in concrete:
        kind = field.get_internal_type()
        if "Integer" in kind or "AutoField" in kind:
            low, high = ops.integer_field_range(kind)
            if low is not None or high is not None:
                found[field.name] = (low, high)
    return found


def check_revision(model: type[models.Model], revision: int) -> None:
    """Raise BadMessage if the model's `cqrs_revision` column cannot hold `revision`."""
    _check_fits(model, wire.REVISION_KEY, f"instance_data.{wire.REVISION_KEY}", revision)


@dataclass(frozen=True)
class Writes:
    """How a model's rows are written, asked once per batch: whether the mixin's own
    handlers write them (so values are converted and checked here), and the database's
    name and the non-finite numbers its float columns store."""

    own: bool
    database: str
    storable: frozenset

    @classmethod
    def of(cls, model: type[models.Model]) -> Writes:
        """Ask now: a hook patched later is seen by the next batch."""
        database, storable = queries.float_tokens(router.db_for_write(model))
        return cls(handlers.default_writes(model), database, storable)


def prepare(model: type[models.Model], signal_type: str, instance_data: dict,
            writes: Writes | None = None) -> Change:
    """Map one SAVE, SYNC or DELETE for `model`; raise BadMessage if it cannot apply.

    `writes` is `Writes.of(model)`, asked once for a batch of events; without it, it is
    asked for this event.
    """
    revision = wire.revision(instance_data)
    check_revision(model, revision)
    updated = updated_at(instance_data)
    if signal_type == wire.SIGNAL_DELETE:
        return _prepare_delete(model, instance_data, revision, updated)
    return _prepare_save(model, signal_type, instance_data, revision, updated,
                         writes or Writes.of(model))


def updated_at(instance_data: dict) -> datetime.datetime | None:
    """Return `instance_data.cqrs_updated` as an aware datetime (naive means UTC), or None
    if it is not one: the revision rules then go by revision alone."""
    value = instance_data.get(wire.UPDATED_KEY)
    if isinstance(value, datetime.datetime):
        moment: datetime.datetime | None = value
    elif isinstance(value, str):
        try:
            moment = wire.parse_datetime(value.strip())
        except (ValueError, OverflowError):
            moment = None
    else:
        moment = None
    if moment is not None and (moment.tzinfo is None or moment.utcoffset() is None):
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment


def django_cqrs_sentence(model: type[models.Model], signal_type: str, data: dict) -> str:
    """Return django-cqrs's sentence for data that lacks what an event needs, or ''.

    The checks are django-cqrs's, in its order: the DELETE's pk, the revision and
    change time, then a SAVE's CQRS_MAPPING sources, pk and required fields. '' means
    the data has all it needs, and a value of it is what cannot be written.
    """
    cqrs_id = model.CQRS_ID
    if signal_type == wire.SIGNAL_DELETE and wire.DELETE_PK_KEY not in data:
        return sentences.pk_missing(cqrs_id)
    if not all(key in data for key in wire.RESERVED_KEYS):
        return sentences.sync_fields_missing(cqrs_id)
    if signal_type == wire.SIGNAL_DELETE:
        return ""
    missing = [k for k in (getattr(model, "CQRS_MAPPING", None) or {}) if k not in data]
    if missing:
        return sentences.bad_mapping(missing[0], cqrs_id)
    facts = fields(model)
    mapped = map_save_data(model, data)
    if facts.pk_name not in mapped:
        return sentences.pk_missing(cqrs_id)
    if not model.CQRS_CUSTOM_SERIALIZATION and facts.required.difference(mapped):
        return sentences.required_fields_missing(cqrs_id)
    return ""


def attname_kwargs(model: type[models.Model], mapped: dict) -> dict:
    """Return `mapped` with foreign keys given by value keyed by their attname (`author_id`)."""
    by_name = fields(model).by_name
    result = {}
    for name, value in mapped.items():
        field = by_name.get(name)
        if field is not None and field.is_relation and not isinstance(value, models.Model):
            name = field.attname
        result[name] = value
    return result


def map_save_data(model: type[models.Model], master_data: dict) -> dict:
    """Return `master_data` renamed by CQRS_MAPPING (all of it when there is none)."""
    mapping = getattr(model, "CQRS_MAPPING", None)
    if mapping is None:
        return master_data
    mapped = {key: master_data[key] for key in wire.RESERVED_KEYS}
    for master_name, replica_name in mapping.items():
        if master_name not in master_data:
            raise BadMessage(
                f"instance_data.{master_name} is missing (CQRS_MAPPING of {model.__name__})"
            )
        mapped[replica_name] = master_data[master_name]
    return mapped


def map_previous_data(model: type[models.Model], previous: dict | None) -> dict | None:
    """Return `previous_data` renamed by CQRS_MAPPING and cut to the model's fields."""
    if not previous:
        return previous
    mapping = getattr(model, "CQRS_MAPPING", None)
    if mapping is not None:
        previous = {mapping[k]: v for k, v in previous.items() if k in mapping}
    names = fields(model).by_name
    return {k: v for k, v in previous.items() if k in names}


def _prepare_save(model: type[models.Model], signal_type: str, instance_data: dict,
                  revision: int, updated: datetime.datetime | None, writes: Writes) -> Change:
    facts = fields(model)
    mapped = map_save_data(model, instance_data)
    if facts.pk_name not in mapped:
        raise BadMessage(f"instance_data.{facts.pk_name} (the primary key) is missing")
    pk = mapped[facts.pk_name]
    how = facts.plain.get(facts.pk_name)
    if how is None or not how.takes(pk):
        pk = _convert(facts.by_name[facts.pk_name], facts.pk_name, pk)
        _check_fits(model, facts.pk_name, f"instance_data.{facts.pk_name}", pk)
    if model.CQRS_CUSTOM_SERIALIZATION:
        return Change(signal_type, pk, revision, mapped, updated=updated)
    mapped = {k: v for k, v in mapped.items() if k in facts.by_name}
    missing = facts.required.difference(mapped)
    if missing:
        raise BadMessage(
            f"instance_data lacks {', '.join(sorted(missing))}, required by {model.__name__}"
        )
    if not writes.own:
        # The model's own hooks write the row: they get the values as sent, as in
        # django-cqrs (nested data included), and decide what fits.
        return Change(signal_type, pk, revision, mapped, updated=updated)
    values = {}
    database, storable, plain = writes.database, writes.storable, facts.plain
    sent = instance_data.get(wire.UPDATED_KEY)
    skip = None
    if facts.updated_as_parsed and updated is not None and type(sent) is str and \
            sent == sent.strip() and mapped.get(wire.UPDATED_KEY) is sent and settings.USE_TZ:
        # DateTimeField reads this text as `updated` was read from it (UTC when naive).
        values[facts.attnames[wire.UPDATED_KEY]] = updated
        skip = wire.UPDATED_KEY
    for name, value in mapped.items():
        if name == skip:
            continue
        how = plain.get(name)
        if how is not None and how.takes(value):  # an int or str: no NaN, no conversion
            values[how.attname] = value
            continue
        nonfinite.check(facts.by_name[name], f"instance_data.{name}", value, database, storable)
        value = _convert(facts.by_name[name], name, value)
        _check_fits(model, name, f"instance_data.{name}", value)
        values[facts.attnames[name]] = value
    return Change(signal_type, pk, revision, mapped, values, updated)


def _prepare_delete(model: type[models.Model], data: dict, revision: int,
                    updated: datetime.datetime | None) -> Change:
    facts = fields(model)
    if wire.DELETE_PK_KEY not in data:
        raise BadMessage(f"instance_data.{wire.DELETE_PK_KEY} (the deleted primary key) is missing")
    pk = _convert(facts.by_name[facts.pk_name], wire.DELETE_PK_KEY, data[wire.DELETE_PK_KEY])
    _check_fits(model, facts.pk_name, f"instance_data.{wire.DELETE_PK_KEY}", pk)
    mapped = {
        facts.pk_name: data[wire.DELETE_PK_KEY],
        wire.REVISION_KEY: revision,
        wire.UPDATED_KEY: data[wire.UPDATED_KEY],
    }
    return Change(wire.SIGNAL_DELETE, pk, revision, mapped, updated=updated)


def _check_fits(model: type[models.Model], name: str, key: str, value: Any) -> None:
    """Raise BadMessage if column `name` cannot hold `value` (integer range, length)."""
    if value is None:
        return
    facts = fields(model)
    field = facts.by_name.get(name)
    if field is None:
        return
    limits = facts.ranges.get(name)
    if limits is not None and isinstance(value, int):
        low, high = limits
        if (low is not None and value < low) or (high is not None and value > high):
            raise BadMessage(
                f"{key} = {_quote(value)} is out of range for column {field.column!r} "
                f"({low} to {high})"
            )
    max_length = getattr(field, "max_length", None)
    if max_length and isinstance(value, str) and len(value) > max_length:
        raise BadMessage(
            f"{key} is {len(value)} characters long ({_quote(value)}); column "
            f"{field.column!r} holds at most {max_length}"
        )


def _quote(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS] + "..."


def _convert(field: models.Field, key: str, value: Any) -> Any:
    if value is None:
        if not field.null:
            raise BadMessage(f"instance_data.{key} must not be null")
        return None
    try:
        value = field.to_python(value)
    except (ValidationError, TypeError, ValueError) as exc:
        reason = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        raise BadMessage(f"instance_data.{key}: {reason}") from exc
    if isinstance(value, datetime.datetime) and value.tzinfo is None and settings.USE_TZ:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return value
