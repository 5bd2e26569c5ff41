"""PostgreSQL: its drivers (psycopg 3, psycopg2), and what the store writes its own way.

Everything the store and the relay ask of a dialect is here, under the same names in
`mysql` and `sqlite`; `dbapi` picks the module once, from the connection.
What PostgreSQL has that the others lack: `UPDATE ... RETURNING`, `= ANY(array)`,
`unnest` with a lateral join (one statement reads every partition's next rows),
LISTEN/NOTIFY, the planner's row estimates, and deferred constraint triggers.
"""

from __future__ import annotations

import datetime
import functools
import importlib
import importlib.util
import json
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from cqrs_outbox.core import contract
from cqrs_outbox.core.errors import ConfigurationError
from cqrs_outbox.core.urls import unreachable
from cqrs_outbox.store import ddl

if TYPE_CHECKING:
    from cqrs_outbox.store.dbapi import Database

NAME = "postgresql"
SCHEMES = ("postgresql", "postgres")
RETURNING = True  # UPDATE and INSERT return rows
DEFAULTS_IN_INSERT = False  # the outbox's defaulted columns are filled by the server
UPDATE_RETURNING = True  # a model's UPDATE can hand back the rows it changed
COMMIT_WITH_INSERT = True  # psycopg 3 may send "INSERT ...; COMMIT" as one query
# A transaction can open in the same query as its first statement ("BEGIN; INSERT ...")
# and close in the same query as its last, with the driver left in autocommit.
BEGIN_WITH_STATEMENT = True
NOTIFIES = True  # LISTEN/NOTIFY wakes the relay
LEASE_ROW_EXISTS = "ON CONFLICT (partition) DO NOTHING"
IDLE = 0  # libpq's PQTRANS_IDLE: no transaction open

# Drivers by module name, in the order the relay prefers them when the user names none:
# psycopg 3 first, as Django does. The value is the distribution to report.
DRIVERS = {"psycopg": "psycopg", "psycopg2": "psycopg2-binary"}
INSTALL_HINT = "pip install 'cqrs-outbox[psycopg]' (or '[psycopg2]')"
CONNECT_TIMEOUT = 10  # seconds to wait for a connection
# TCP keepalives, so a connection whose peer vanished fails instead of hanging.
KEEPALIVE_IDLE = 10  # seconds
KEEPALIVE_INTERVAL = 5  # seconds
KEEPALIVE_COUNT = 3


# -- connecting --------------------------------------------------------------------------

def installed_drivers() -> list[str]:
    """Return the driver modules that can be imported, preferred first."""
    return [name for name in DRIVERS if _importable(name)]


def _importable(name: str) -> bool:
    if name in sys.modules:  # None there means the import is blocked
        return sys.modules[name] is not None
    return importlib.util.find_spec(name) is not None


def choose_driver(requested: str | None = None) -> str:
    """Return the driver to use: `requested`, else the first one installed.

    Raises ConfigurationError naming `--driver` or what to install.
    """
    if requested is not None and requested not in DRIVERS:
        raise ConfigurationError(
            f"--driver must be one of {', '.join(DRIVERS)}, got {requested!r}"
        )
    installed = installed_drivers()
    if requested is not None and requested not in installed:
        package = "psycopg[binary]" if requested == "psycopg" else DRIVERS[requested]
        raise ConfigurationError(
            f"--driver {requested}: the {requested} module is not installed; "
            f"pip install '{package}'"
        )
    if not installed:
        raise ConfigurationError(f"no PostgreSQL driver is installed: {INSTALL_HINT}")
    return requested or installed[0]


def _libpq_options() -> dict[str, Any]:
    """Return the libpq parameters both drivers pass on: timeouts, keepalives, a name."""
    return dict(
        connect_timeout=CONNECT_TIMEOUT,
        keepalives=1,
        keepalives_idle=KEEPALIVE_IDLE,
        keepalives_interval=KEEPALIVE_INTERVAL,
        keepalives_count=KEEPALIVE_COUNT,
        application_name="cqrs-outbox-relay",
    )


def open_url(url: str, driver: str | None = None) -> tuple[Any, str]:
    """Open `url` in autocommit mode; return the connection and the driver module's name."""
    module = choose_driver(driver)
    if module == "psycopg":
        psycopg = importlib.import_module("psycopg")
        try:
            # Client-side binding, as Django uses it: the store's SQL is written for
            # placeholders that the driver fills in, not for server-side parameters.
            connection = psycopg.connect(
                url, autocommit=True, cursor_factory=psycopg.ClientCursor, **_libpq_options()
            )
        except psycopg.Error as exc:
            raise unreachable(url, exc) from exc
        return connection, module
    psycopg2 = importlib.import_module("psycopg2")  # only this path needs the driver
    try:
        connection = psycopg2.connect(url, **_libpq_options())
    except psycopg2.Error as exc:
        raise unreachable(url, exc) from exc
    connection.autocommit = True
    return connection, module


# -- statements --------------------------------------------------------------------------

def prepare(sql: str, paramstyle: str) -> str:
    """Return the store's SQL as this database takes it (as written)."""
    return sql


def parameters(params: Sequence[Any]) -> tuple:
    """Return a statement's parameters in the form this database takes (as they are)."""
    return tuple(params)


def timestamp(value: datetime.datetime) -> Any:
    """Return an aware datetime as a parameter: as it is (timestamptz)."""
    return value


def literal_quoter(db: Database) -> Callable[[Any], bytes] | None:
    """Return psycopg 3's quoting of one value as an SQL literal (its own, in C with
    psycopg-binary), or None for psycopg2."""
    if db.driver != "psycopg":
        return None
    from psycopg.adapt import Transformer

    return Transformer.from_context(db.raw).as_literal


def in_transaction(raw: Any) -> bool:
    """Return whether the server holds a transaction open on this driver connection, as
    libpq last heard it (no request): both drivers answer from the same status."""
    return raw.info.transaction_status != IDLE


def past_begin(cursor: Any) -> None:
    """Move a driver cursor that ran "BEGIN; <statement>" on to the statement's result.

    psycopg 3 keeps the result of each statement of a query and starts at the first;
    psycopg2 keeps only the last one.
    """
    if _of_psycopg3(type(cursor)):
        cursor.nextset()


_PSYCOPG3_CURSORS: dict[type, bool] = {}


def _of_psycopg3(cursor_class: type) -> bool:
    # Django's cursor classes subclass the driver's.
    found = _PSYCOPG3_CURSORS.get(cursor_class)
    if found is None:
        found = _PSYCOPG3_CURSORS[cursor_class] = any(
            cls.__module__.partition(".")[0] == "psycopg" for cls in cursor_class.__mro__)
    return found


def id_filter(ids: Sequence[int]) -> tuple[str, list]:
    """Return the WHERE test naming `ids`, and its parameters: one array parameter."""
    return "id = ANY(%s)", [list(ids)]


@functools.lru_cache(maxsize=8)
def read_pending_sql(columns: str) -> str:
    """Return the read of pending rows: for each (partition, cursor) of two arrays, that
    partition's next rows from the pending index, in the order given, `limit` in all.
    Parameters: partitions, cursors, status, limit per partition, limit."""
    selected = "e." + columns.replace(", ", ", e.")
    return (
        f"SELECT {selected} "
        "FROM unnest(%s::int[], %s::bigint[]) AS p(part, after) "
        f"CROSS JOIN LATERAL (SELECT {columns} FROM {contract.OUTBOX_TABLE} "
        "WHERE status = %s AND partition = p.part AND id > p.after "
        "ORDER BY id LIMIT %s) AS e LIMIT %s"
    )


def read_pending(db: Database, columns: str, cursors: Sequence[tuple[int, int]],
                 limit: int) -> list:
    """Return the raw rows of `store.read_pending` in one statement."""
    parts, afters = [p for p, _ in cursors], [a for _, a in cursors]
    return db.fetchall(read_pending_sql(columns),
                       (parts, afters, contract.STATUS_PENDING, limit, limit))


def clock(db: Database) -> datetime.datetime:
    """Return the database's current time (the statement's start), aware."""
    row = db.fetchone("SELECT statement_timestamp()")
    value = row[0] if row else datetime.datetime.now(datetime.timezone.utc)
    return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)


def row_estimate(db: Database, table: str, filtered: bool, explain: Callable[[], str]) -> int:
    """Return the planner's estimate of the rows a query yields, from its JSON plan."""
    plan = json.loads(explain())
    return int(plan[0]["Plan"]["Plan Rows"])


# -- the capture triggers (CQRS['master']['capture'] = 'database') ----------------------
#
# A deferred constraint trigger per row runs at COMMIT, after the commit-time flush, and
# records the row only when this transaction wrote no pending event for it (`xmin`),
# through a partial index on pending events created with the triggers.

TRIGGERS_SQL = ("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal "
                "AND tgname LIKE 'cqrs_outbox_capture%%'")


def trigger_names(table: str) -> list[str]:
    """Return the names of the capture triggers of `table`."""
    return [ddl.name("cqrs_outbox_capture", table)]


def capture_triggers(table: str, pk: str, cqrs_id: str,
                     quote: Callable[[str], str]) -> tuple[list[str], list[str]]:
    """Return the DDL that installs, and the DDL that drops, the capture of `table`."""
    function = ddl.name("cqrs_outbox_capture_fn", table)
    (trigger,) = trigger_names(table)
    body = f"""
CREATE OR REPLACE FUNCTION {function}() RETURNS trigger AS $$
DECLARE
    row_pk text;
    deleted bigint;
    me xid;
BEGIN
    IF TG_OP = 'DELETE' THEN
        row_pk := OLD.{quote(pk)}::text;
        deleted := OLD.cqrs_revision;
    ELSE
        row_pk := NEW.{quote(pk)}::text;
    END IF;
    me := (txid_current() % 4294967296)::text::xid;
    PERFORM 1 FROM {ddl.OUTBOX} e
        WHERE e.status = 'pending' AND e.cqrs_id = {ddl.literal(cqrs_id)}
          AND e.instance_pk = row_pk AND e.xmin = me
        LIMIT 1;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO {ddl.CAPTURE} (cqrs_id, table_name, instance_pk, kind, revision, created_at)
        VALUES ({ddl.literal(cqrs_id)}, TG_TABLE_NAME, row_pk, substr(TG_OP, 1, 1), deleted,
                clock_timestamp());
    PERFORM pg_notify({ddl.literal(contract.NOTIFY_CHANNEL)}, '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql"""
    install = [
        f"CREATE INDEX IF NOT EXISTS {ddl.ROW_INDEX} ON {ddl.OUTBOX} (cqrs_id, instance_pk) "
        f"WHERE status = 'pending'",
        body,
        f"DROP TRIGGER IF EXISTS {trigger} ON {quote(table)}",
        f"CREATE CONSTRAINT TRIGGER {trigger} AFTER INSERT OR UPDATE OR DELETE "
        f"ON {quote(table)} DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
        f"EXECUTE FUNCTION {function}()",
    ]
    drop = [f"DROP TRIGGER IF EXISTS {trigger} ON {quote(table)}",
            f"DROP FUNCTION IF EXISTS {function}()"]
    return install, drop


def shared_triggers(remove: bool) -> list[str]:
    """Return the DDL every table's capture shares: none to add (the row index comes with
    each table's triggers); dropping the last table's drops the index."""
    return [f"DROP INDEX IF EXISTS {ddl.ROW_INDEX}"] if remove else []


CLEAR_TRIGGER = None  # no trigger on the outbox: the row triggers look for the event
