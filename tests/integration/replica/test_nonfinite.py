"""NaN and the infinities: applied where the float column stores them, refused elsewhere.

django-cqrs reads bodies with ujson, which takes the tokens `NaN`, `Infinity` and
`-Infinity` (and `1e999` as infinity), and saves them into whatever field they are
for. We keep that for float columns that hold the value, and dead-letter the rest with
the key named.
"""

import json
import math

import pytest
from django.db import connection

from cqrs_outbox.core import wire
from cqrs_outbox.registry import ReplicaRegistry
from cqrs_outbox.replica import apply
from tests.testproject.replica import models

pytestmark = [pytest.mark.django_db, pytest.mark.mysql]

UPDATED = "2026-01-02 03:04:05.123456+00:00"
STORED = {"postgresql": {"NaN", "Infinity", "-Infinity"}, "sqlite": {"Infinity", "-Infinity"}}


def _raw(pk, field, token):
    """A body as django-cqrs's master writes it with ujson: the token bare in the JSON."""
    body = {"signal_type": "SAVE", "cqrs_id": "all_fields", "instance_pk": pk,
            "instance_data": {"id": pk, field: "TOKEN", "cqrs_revision": 0,
                              "cqrs_updated": UPDATED},
            "previous_data": None, "correlation_id": None, "retries": 0, "expires": None,
            "meta": None}
    return json.dumps(body).replace('"TOKEN"', token).encode()


def _apply(body):
    envelope = wire.decode(body)
    [outcome] = apply.apply([(envelope, ReplicaRegistry.get_model_by_cqrs_id("all_fields"))])
    return outcome


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_float_column__stores_what_the_database_holds_and_refuses_the_rest(token):
    outcome = _apply(_raw(1, "float_field", token))
    named = "Infinity" if token == "1e999" else token
    if named in STORED.get(connection.vendor, set()):
        assert outcome.status == "applied", outcome
        value = models.AllFieldsRef.objects.get(pk=1).float_field
        assert (math.isnan(value) if named == "NaN" else value == float(named.lower()))
    else:
        assert outcome.status == "bad"
        assert outcome.reason == (
            f"instance_data.float_field is {named}, a number JSON does not have; column "
            f"'float_field' (FloatField on {connection.vendor}) cannot store it")
        assert not models.AllFieldsRef.objects.filter(pk=1).exists()


@pytest.mark.parametrize("field, token, kind", [
    ("decimal_field", "NaN", "DecimalField"),
    ("int_field", "Infinity", "IntegerField"),
    ("char_field", "-Infinity", "CharField"),
])
def test_other_columns__refused_naming_the_key_and_the_column(field, token, kind):
    outcome = _apply(_raw(2, field, token))
    assert outcome.status == "bad"
    assert outcome.reason == (
        f"instance_data.{field} is {token}, a number JSON does not have; column '{field}' "
        f"({kind} on {connection.vendor}) cannot store it")
    assert not models.AllFieldsRef.objects.filter(pk=2).exists()


def test_json_column__refuses_nan_anywhere_inside_the_value():
    outcome = _apply(_raw(3, "json_field", '{"a": [1, {"b": NaN}]}'))
    assert outcome.status == "bad"
    assert outcome.reason.startswith("instance_data.json_field holds NaN, a number JSON does "
                                     "not have; column 'json_field' (JSONField on ")


def test_finite_values_and_keys_without_a_field__apply():
    body = _raw(4, "float_field", "1.5").replace(b'"cqrs_revision"',
                                                 b'"unmapped": NaN, "cqrs_revision"')
    assert _apply(body).status == "applied"
    assert models.AllFieldsRef.objects.get(pk=4).float_field == 1.5
