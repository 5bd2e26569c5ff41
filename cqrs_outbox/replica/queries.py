"""The replica's own queries: row locks by key, revisions, and tombstones.

Every statement the apply path runs besides the replica models' own writes lives here.
"""

from __future__ import annotations

import datetime
import zlib
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import connections, models
from django.utils import timezone

from cqrs_outbox import store
from cqrs_outbox.models import Tombstone
from cqrs_outbox.replica import queries_mysql

# What a float column stores of JSON's non-finite numbers, by Django vendor name.
FLOAT_COLUMNS = {
    "postgresql": frozenset({"NaN", "Infinity", "-Infinity"}),
    "sqlite": frozenset({"Infinity", "-Infinity"}),
}

# First half of the two-int advisory lock key, so our locks never meet other users' ones.
LOCK_NAMESPACE = 0x43515253  # "CQRS"
PURGE_BATCH_SIZE = 5000  # tombstones per purge statement
MAX_PARAMS = 60000  # bind parameters per statement (PostgreSQL allows 65535)


def lock_key(cqrs_id: str, key: str) -> int:
    """Return the 32-bit lock number of one row, the same in every process."""
    value = zlib.crc32(f"{cqrs_id}\x00{key}".encode())
    return value - (1 << 32) if value >= (1 << 31) else value


def lock(alias: str, keys: Iterable[tuple[str, str]]) -> None:
    """Lock rows by (cqrs_id, key) until the transaction ends, also rows that do not exist.

    Two workers applying events of the same row take turns, so neither decides on a
    revision or tombstone the other is about to change. Locks are taken in one order,
    so workers cannot deadlock on them. MySQL locks rows of a lock table instead
    (`queries_mysql.lock`); a no-op on SQLite, which lets one writer in at a time anyway.
    """
    connection = connections[alias]
    if connection.vendor not in ("postgresql", "mysql"):
        return
    numbers = sorted({lock_key(cqrs_id, key) for cqrs_id, key in keys})
    if not numbers:
        return
    if connection.vendor == "mysql":
        queries_mysql.lock(connection, numbers)
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_advisory_xact_lock(%s, k)) FROM ("
            " SELECT k FROM unnest(%s::int[]) WITH ORDINALITY AS t(k, n) ORDER BY n) AS s",
            [LOCK_NAMESPACE, array_text(numbers)],
        )


def array_text(values: list) -> Any:
    """Return a list of plain ints as the text of a PostgreSQL array ("{1,2,3}"), which
    the driver quotes as one string where it adapts a list element by element in
    Python; any other list as it is."""
    if all(type(v) is int for v in values):
        return "{" + ",".join(map(str, values)) + "}"
    return values


def set_statement_timeout(alias: str, milliseconds: int) -> None:
    """Bound every statement of the current transaction (PostgreSQL only)."""
    connection = connections[alias]
    if milliseconds > 0 and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [str(milliseconds)])


# Primary key fields whose values PostgreSQL hands back as the very objects the field's
# to_python gives (int, str, UUID): a read of them needs none of Django's converters, so
# its keys match the events' own.
PLAIN_KEYS = (
    models.AutoField, models.BigAutoField, models.SmallAutoField, models.IntegerField,
    models.BigIntegerField, models.SmallIntegerField, models.PositiveIntegerField,
    models.PositiveBigIntegerField, models.PositiveSmallIntegerField, models.CharField,
    models.TextField, models.UUIDField,
)


def revisions(model: type[models.Model], alias: str, pks: list) -> dict:
    """Return {pk: (cqrs_revision, cqrs_updated)} of the rows of `model` among `pks`."""
    if not pks:
        return {}
    connection = connections[alias]
    pk = model._meta.pk
    if connection.vendor == "postgresql" and type(pk) in PLAIN_KEYS:
        fields = [pk, model._meta.get_field("cqrs_revision"),
                  model._meta.get_field("cqrs_updated")]
        in_micros = settings.USE_TZ and type(fields[2]) is models.DateTimeField
        found = _by_array(connection, model._meta.db_table, fields, pk,
                          [pk.get_db_prep_value(v, connection) for v in pks],
                          micros=fields[2] if in_micros else None)
        if in_micros:
            epoch, micro = _EPOCH, datetime.timedelta(microseconds=1)
            found = [(key, revision, None if updated is None else epoch + updated * micro)
                     for key, revision, updated in found]
    else:
        rows = model._default_manager.using(alias).filter(pk__in=pks).order_by()
        found = rows.values_list("pk", "cqrs_revision", "cqrs_updated")
    return {key: (revision, aware(updated)) for key, revision, updated in found}


def tombstones(alias: str, cqrs_id: str, keys: list[str]) -> dict[str, tuple]:
    """Return {key: (revision, the DELETE's cqrs_updated or None)} of the tombstones of
    `cqrs_id` among `keys`."""
    if not keys:
        return {}
    connection = connections[alias]
    if connection.vendor == "postgresql":
        meta = Tombstone._meta
        key_field = meta.get_field("instance_pk")
        fields = [key_field, meta.get_field("revision"), meta.get_field("updated")]
        found = _by_array(connection, meta.db_table, fields, key_field, keys,
                          (meta.get_field("cqrs_id"), cqrs_id))
    else:
        rows = Tombstone.objects.using(alias).filter(cqrs_id=cqrs_id, instance_pk__in=keys)
        found = rows.order_by().values_list("instance_pk", "revision", "updated")
    return {key: (revision, aware(updated)) for key, revision, updated in found}


def _by_array(connection: Any, table: str, fields: list, key: Any, values: list,
              equal: tuple | None = None, micros: Any = None) -> list:
    """Read `fields` of the rows of `table` whose `key` is among `values`, passed as one
    array (PostgreSQL): one parameter, where `__in` takes one per value and the driver
    parses each long statement anew.

    The field `micros` (a timestamptz column) is read as microseconds since the Unix
    epoch, NULL where it is NULL or infinite: an integer the driver hands over in C,
    where a timestamp goes through Django's loader in Python (`revisions` turns it
    back into the same moment)."""
    qn = connection.ops.quote_name
    where = f"{qn(key.column)} = ANY(%s::{key.cast_db_type(connection)}[])"
    params: list = [array_text(values)]
    if equal is not None:
        where = f"{qn(equal[0].column)} = %s AND {where}"
        params.insert(0, equal[1])
    columns = [
        f"CASE WHEN isfinite({qn(f.column)}) THEN "
        f"round(extract(epoch FROM {qn(f.column)}) * 1000000)::bigint END"
        if f is micros else qn(f.column)
        for f in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(columns)} FROM {qn(table)} WHERE {where}", params)
        return cursor.fetchall()


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def aware(value: Any) -> Any:
    """Return a datetime read from the database as an aware one (naive means UTC)."""
    if isinstance(value, datetime.datetime) and timezone.is_naive(value):
        return value.replace(tzinfo=datetime.timezone.utc)
    return value


def save_tombstones(alias: str, cqrs_id: str, by_key: dict[str, Any]) -> None:
    """Record that the rows `by_key` names were deleted: {key: (revision, updated)}, or
    {key: revision} when the master's time of the DELETE is unknown."""
    if not by_key:
        return
    now = timezone.now()
    # MySQL names no conflict target: its only unique key besides the new row's id is
    # (cqrs_id, instance_pk), the same one.
    target = {} if connections[alias].vendor == "mysql" else {
        "unique_fields": ["cqrs_id", "instance_pk"]}
    stones = []
    for key, value in by_key.items():
        revision, updated = value if isinstance(value, tuple) else (value, None)
        stones.append(Tombstone(cqrs_id=cqrs_id, instance_pk=key, revision=revision,
                                updated=_storable(updated), deleted_at=now))
    Tombstone.objects.using(alias).bulk_create(
        stones,
        update_conflicts=True,
        update_fields=["revision", "updated", "deleted_at"],
        **target,
    )


def _storable(value: datetime.datetime | None) -> datetime.datetime | None:
    if value is not None and not settings.USE_TZ:
        return timezone.make_naive(value, datetime.timezone.utc)
    return value


def forget_tombstones(alias: str, cqrs_id: str, keys: list[str]) -> None:
    """Delete the tombstones of `cqrs_id` among `keys` (a repair restated those rows)."""
    if keys:
        Tombstone.objects.using(alias).filter(cqrs_id=cqrs_id, instance_pk__in=keys).delete()


def upsert(model: type[models.Model], alias: str, rows: list[dict], update: list[str]) -> None:
    """Insert rows given by attname, or update the `update` columns of those that exist.

    Columns a row does not give take their default on insert and are left alone on
    update. One statement per chunk, with the values prepared as Django would save them.
    """
    connection = connections[alias]
    qn = connection.ops.quote_name
    by_attname = {f.attname: f for f in model._meta.concrete_fields}
    if connection.vendor == "mysql":
        fresh, present = queries_mysql.split_present(model, alias, rows)
        _insert_rows(model, alias, fresh, "")
        if update:  # with nothing to update, a row already there stays as it is
            clause = queries_mysql.conflict_clause(qn, [by_attname[a].column for a in update])
            _insert_rows(model, alias, present, clause)
        return
    assignments = ", ".join(
        f"{qn(by_attname[a].column)} = excluded.{qn(by_attname[a].column)}" for a in update
    )
    action = f"DO UPDATE SET {assignments}" if update else "DO NOTHING"
    _insert_rows(model, alias, rows, f" ON CONFLICT ({qn(model._meta.pk.column)}) {action}")


def _insert_rows(model: type[models.Model], alias: str, rows: list[dict], tail: str) -> None:
    """INSERT `rows` in chunks, each statement ending with `tail` (a conflict clause).

    On psycopg 3 a chunk of more than `store.LITERAL_PAST` values goes with its values
    quoted in (`_literals`): its binding would otherwise parse the statement for
    placeholders anew each time (it keeps the parse of small statements only).
    """
    connection = connections[alias]
    fields = model._meta.concrete_fields
    qn = connection.ops.quote_name
    columns = ", ".join(qn(f.column) for f in fields)
    row_sql = "(" + ", ".join("%s" for _ in fields) + ")"
    limit = getattr(connection.features, "max_query_params", None) or MAX_PARAMS
    chunk = max(1, min(limit, MAX_PARAMS) // len(fields))
    quote = _quoter(connection) if len(rows) * len(fields) > store.LITERAL_PAST else None
    head = f"INSERT INTO {qn(model._meta.db_table)} ({columns}) VALUES "
    if quote is not None and "%" in head + tail:  # would be read as a placeholder
        quote = None
    with connection.cursor() as cursor:
        for start in range(0, len(rows), chunk):
            part = rows[start:start + chunk]
            if quote is not None and len(part) * len(fields) > store.LITERAL_PAST:
                cursor.execute(head + _literals(part, fields, connection, quote) + tail)
                continue
            params = [
                f.get_db_prep_save(row[f.attname] if f.attname in row else f.get_default(),
                                   connection)
                for row in part for f in fields
            ]
            cursor.execute(f"{head}{', '.join(row_sql for _ in part)}{tail}", params)


# Django's field classes whose preparation for PostgreSQL hands a value of the given type
# back unchanged (int(), to_python of a str, adapt_datetimefield_value of an aware
# datetime): `_literals` writes such a value as SQL itself. Their subclasses may prepare
# values otherwise and go through Django.
_AS_IS = {
    **dict.fromkeys((models.AutoField, models.BigAutoField, models.SmallAutoField,
                     models.IntegerField, models.BigIntegerField, models.SmallIntegerField,
                     models.PositiveIntegerField, models.PositiveBigIntegerField,
                     models.PositiveSmallIntegerField), int),
    models.CharField: str,
    models.TextField: str,
    models.DateTimeField: datetime.datetime,
}
_INT8 = (-(1 << 63), (1 << 63) - 1)  # what a bare integer literal may hold (bigint)


def _literals(part: list[dict], fields: Any, connection: Any, quote: Any) -> str:
    """Return the VALUES rows of `part` with each value written as an SQL literal.

    A value Django would pass on unchanged is written directly: an int in an integer
    field, and a datetime in UTC in a DateTimeField (as ISO-8601 text cast to
    timestamptz). Every other value is prepared by its field as Django saves it, then
    quoted by psycopg's own quoting (`quote`), as its client-side binding would.
    """
    columns = [(f.attname, _AS_IS.get(type(f)), f) for f in fields]
    utc, low, high = datetime.timezone.utc, _INT8[0], _INT8[1]
    out = []
    for row in part:
        literals = []
        for attname, kind, f in columns:
            value = row[attname] if attname in row else f.get_default()
            if type(value) is kind:
                if kind is int:
                    if low <= value <= high:
                        literals.append(f" {value}")  # the space: no "--" after a comma
                        continue
                elif kind is str:
                    literals.append(quote(value).decode())
                    continue
                elif value.tzinfo is utc:
                    # Naive ISO text and the offset: isoformat() of an aware datetime
                    # costs twice as much, asking the zone for its offset.
                    literals.append(f"'{value.replace(tzinfo=None).isoformat()}+00:00'"
                                    "::timestamptz")
                    continue
            literals.append(quote(f.get_db_prep_save(value, connection)).decode())
        out.append("(" + ", ".join(literals) + ")")
    return ", ".join(out)


def _quoter(connection: Any) -> Any:
    """Return psycopg 3's quoting of one value for this Django connection, or None."""
    if connection.vendor != "postgresql":
        return None
    return store.wrap(connection).literal_quoter()


def tombstone(alias: str, cqrs_id: str, key: str) -> tuple:
    """Return (revision, updated) of one row's tombstone, or (None, None)."""
    return tombstones(alias, cqrs_id, [key]).get(key, (None, None))


def purge_tombstones(alias: str, retention: int, batch_size: int = PURGE_BATCH_SIZE) -> int:
    """Delete tombstones older than `retention` seconds, in bounded batches; return how many."""
    cutoff = timezone.now() - datetime.timedelta(seconds=retention)
    stale = Tombstone.objects.using(alias).filter(deleted_at__lt=cutoff)
    total = 0
    while True:
        ids = list(stale.order_by().values_list("id", flat=True)[:batch_size])
        if not ids:
            return total
        total += Tombstone.objects.using(alias).filter(id__in=ids).delete()[0]
        if len(ids) < batch_size:
            return total


def float_tokens(alias: str) -> tuple[str, frozenset[str]]:
    """Return the database `alias` names (its vendor) and the non-finite numbers its float
    columns store."""
    vendor = connections[alias].vendor
    return vendor, FLOAT_COLUMNS.get(vendor, frozenset())
