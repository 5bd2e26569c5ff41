"""Decide where NaN and the infinities from a body may go: only into float columns that
store them.

JSON has no NaN or Infinity, but Python's reader (and django-cqrs's, ujson) accepts the
tokens `NaN`, `Infinity` and `-Infinity`, and reads a number too large for a float
(`1e999`) as infinity; django-cqrs applies such values. A replica keeps that for a
FloatField whose column holds the value: PostgreSQL's double precision holds all three,
SQLite's REAL holds the infinities (it would turn NaN into NULL), MySQL's and MariaDB's
DOUBLE none. Anywhere else (integer, decimal, text, JSON) the event is refused with a
reason naming the key, and the consumer dead-letters it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from django.db import models

from cqrs_outbox.core.errors import BadMessage


def name(value: float) -> str:
    """Return the JSON token of a non-finite float: NaN, Infinity or -Infinity."""
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def check(field: models.Field, key: str, value: Any, database: str,
          storable: frozenset[str] = frozenset()) -> None:
    """Raise BadMessage if `value` is or holds a non-finite number `field` cannot store.

    `storable` are the tokens a float column of the `database` keeps (the replica's
    queries module knows them per database)."""
    found = _first(value)
    if found is None:
        return
    token = name(found)
    if isinstance(value, float) and isinstance(field, models.FloatField) and \
            token in storable:
        return
    where = "holds" if isinstance(value, (dict, list)) else "is"
    raise BadMessage(
        f"{key} {where} {token}, a number JSON does not have; column {field.column!r} "
        f"({field.get_internal_type()} on {database}) cannot store it"
    )


def _first(value: Any) -> float | None:
    """Return the first non-finite float in `value` (walked without recursion), or None."""
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return item
        children: Iterable[Any] = ()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        stack.extend(c for c in children if isinstance(c, (float, dict, list)))
    return None
