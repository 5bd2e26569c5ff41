"""A save made outside any transaction, in two round trips to the database.

A master save needs a transaction of its own, for its row and its event to commit
together. Opened the usual way (`atomic()` switches the driver's autocommit off), the
driver sends BEGIN as a request of its own and waits for the answer before the model's
INSERT, and psycopg2 sends the COMMIT alone after the event's INSERT: four requests
where plain Django sends one. Where the database's dialect allows it (PostgreSQL with
client-side binding, both drivers), `transaction()` instead leaves the driver in
autocommit and

- sends "BEGIN; " in the same query as the transaction's first statement (the model's
  INSERT or UPDATE, or whatever a signal handler runs first);
- lets the outbox send the event INSERT with its "; COMMIT" (`outbox._commits_in_insert`);
- sends COMMIT or ROLLBACK itself, and only when the server still holds the transaction.

Django's own account of the transaction is untouched: it is an ordinary `atomic()` block,
with its savepoints, `on_commit` callbacks and rollback on error. Only three methods of
that connection object are replaced while the block runs (`_set_autocommit`, `_commit`,
`_rollback`: how the driver is told), and an execute wrapper adds the BEGIN. Statements
sent through the driver's own connection, bypassing Django's cursors, are not seen by
the wrapper: inside such a save, before any Django statement, they would run outside
the transaction. Nothing of this package does that.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from django.db import connections, transaction

from cqrs_outbox import store

ACTIVE_ATTR = "_cqrs_one_trip"  # set on a connection while such a transaction runs


def transaction_for(alias: str) -> AbstractContextManager:
    """Return the transaction a master save runs in: `atomic()`, or outside any
    transaction on a dialect that allows it, one that costs no round trip of its own."""
    conn = connections[alias]
    if conn.in_atomic_block or not _allowed(conn):
        return transaction.atomic(using=alias, savepoint=False)
    return _OneTrip(conn, alias)


def active(conn: Any) -> bool:
    """Return whether `conn` runs a transaction opened by `transaction_for`."""
    return conn.__dict__.get(ACTIVE_ATTR) is not None


def _allowed(conn: Any) -> bool:
    dialect = store.dialect_of(conn)
    if dialect is None or not dialect.BEGIN_WITH_STATEMENT:
        return False
    # Server-side binding sends each statement on its own: no "BEGIN; ..." in one query.
    return conn.settings_dict["OPTIONS"].get("server_side_binding") is not True


class _OneTrip:
    """An outermost `atomic()` whose BEGIN and COMMIT ride on statements of its own."""

    def __init__(self, conn: Any, alias: str) -> None:
        self.conn = conn
        self.alias = alias
        self.atomic: Any = None
        self.open = False  # between Django's autocommit off and back on

    def __enter__(self) -> None:
        conn = self.conn
        # Connect first: a new connection's setup switches autocommit on through the
        # method replaced below.
        conn.ensure_connection()
        self.dialect = store.dialect_of(conn)
        conn.__dict__[ACTIVE_ATTR] = self
        conn._set_autocommit = self._set_autocommit
        conn._commit = self._commit
        conn._rollback = self._rollback
        conn.execute_wrappers.append(self._begin_with_first)
        self.atomic = transaction.atomic(using=self.alias, savepoint=False)
        try:
            self.atomic.__enter__()
        except BaseException:
            self._restore()
            raise

    def __exit__(self, *exc: Any) -> bool | None:
        try:
            return self.atomic.__exit__(*exc)
        finally:
            self._restore()

    def _restore(self) -> None:
        conn = self.conn
        for name in ("_set_autocommit", "_commit", "_rollback"):
            conn.__dict__.pop(name, None)
        if self._begin_with_first in conn.execute_wrappers:
            conn.execute_wrappers.remove(self._begin_with_first)
        conn.__dict__.pop(ACTIVE_ATTR, None)

    # -- the connection's methods while the block runs ---------------------------------

    def _set_autocommit(self, autocommit: bool) -> None:
        # The driver stays in autocommit; the block's statements carry BEGIN and COMMIT.
        self.open = not autocommit
        if autocommit:
            # The block is over: Django runs the on_commit callbacks next, on a connection
            # that must be its plain self again.
            self._restore()
            self.conn._set_autocommit(True)

    def _commit(self) -> None:
        self._end("COMMIT")

    def _rollback(self) -> None:
        self._end("ROLLBACK")

    def _end(self, statement: str) -> None:
        conn = self.conn
        with conn.wrap_database_errors:
            if conn.connection is not None and self.dialect.in_transaction(conn.connection):
                self._send(statement)

    def _begin_with_first(self, execute: Callable, sql: str, params: Any, many: bool,
                          context: dict) -> Any:
        if not self.open or self.dialect.in_transaction(self.conn.connection):
            return execute(sql, params, many, context)
        if many or not isinstance(sql, str):
            # executemany repeats its statement, and a composed query cannot be prefixed:
            # BEGIN goes alone.
            self._send("BEGIN")
            return execute(sql, params, many, context)
        result = execute("BEGIN; " + sql, params, many, context)
        self.dialect.past_begin(context["cursor"].cursor)
        return result

    def _send(self, statement: str) -> None:
        cursor = self.conn.connection.cursor()
        try:
            cursor.execute(statement)
        finally:
            cursor.close()
