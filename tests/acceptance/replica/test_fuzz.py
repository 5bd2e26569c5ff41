"""Fuzzing the real consumer: no body can stop it, lose a good message or escape the DLQ.

Hypothesis draws bodies of three families: JSON of any shape and depth, random bytes,
and valid envelopes with one field given a wrong type or an extreme value. Good messages
carry unknown keys of any shape, which readers must ignore. They are
published to a real queue, interleaved with good messages, while one `cqrs_consume`
process runs. After each example every good message is applied, every bad one is in the
dead-letter queue with a reason, and the worker is alive.

CQRS_FUZZ_EXAMPLES sets the number of examples (default sized for about a minute);
`make fuzz` runs the long profile.
"""

import itertools
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cqrs_outbox.core import wire
from cqrs_outbox.registry import ReplicaRegistry
from tests.integration.replica import events as ev
from tests.support.waiting import wait_until
from tests.testproject.replica import models

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

EXAMPLES = int(os.environ.get("CQRS_FUZZ_EXAMPLES", "250"))
INT32 = 2**31
ids = itertools.count(1)  # primary keys and message ids, unique across examples

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
any_json = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                        max_leaves=25)
not_object = scalars | st.lists(any_json, max_size=4)
not_int = st.none() | st.floats() | st.text(max_size=10) | st.lists(st.integers(), max_size=2)
extreme_int = st.integers(max_value=-INT32 - 1) | st.integers(min_value=INT32)


def _not_int_text(text):
    try:
        int(text)
    except ValueError:
        return True
    return False


# field of the envelope (or of instance_data) -> values that make the message bad
MUTATIONS = {
    "signal_type": st.integers() | st.none() | st.lists(st.text(), max_size=2)
    | st.text().filter(lambda t: t not in wire.SIGNAL_TYPES),
    "cqrs_id": st.integers() | st.none() | st.just("") | st.dictionaries(st.text(), st.text())
    | st.text(min_size=1).filter(lambda t: t not in ReplicaRegistry.models),
    "instance_data": not_object,
    "instance_pk": st.floats() | st.none() | st.booleans() | st.lists(st.integers(), max_size=2),
    "previous_data": st.integers() | st.text() | st.lists(st.integers(), max_size=2),
    "retries": st.integers(max_value=-1) | st.text() | st.floats(),
    "expires": st.integers() | st.lists(st.integers(), max_size=1)
    | st.text(max_size=12).filter(lambda t: "-" not in t),
    "data.cqrs_revision": st.integers(max_value=-1) | st.integers(min_value=INT32) | not_int
    | st.booleans(),
    "data.id": extreme_int | st.none() | st.text().filter(_not_int_text),
    "data.name": st.none() | st.text(min_size=101, max_size=300),
    "data.cqrs_updated": st.none() | st.integers() | st.text(max_size=8).filter(
        lambda t: not t.strip()[:4].isdigit()),
}
REQUIRED = {"signal_type", "cqrs_id", "instance_data", "instance_pk"}


def _good(pk, extra):
    """A good message; unknown keys, whatever they hold, must not make it bad."""
    body = ev.save("author", pk, 0, name=f"good {pk}")
    if extra is not None:
        body["x-unknown"] = extra
    return json.dumps(body).encode()


@st.composite
def mutated_envelopes(draw):
    """A valid envelope with one field given a value it cannot take."""
    body = ev.save("author", next(ids), 0, name="mutant")
    field = draw(st.sampled_from(sorted(MUTATIONS)))
    value = draw(MUTATIONS[field])
    if field.startswith("data."):
        body["instance_data"][field[5:]] = value
    else:
        body[field] = value
    return json.dumps(body).encode()


@st.composite
def deep_bodies(draw):
    """An envelope, or a bare value, nested deeper than the limit (up to the C stack's)."""
    depth = draw(st.integers(65, 5000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    deep = opener * depth + ("1" if opener != "[" else "") + closer * depth
    if draw(st.booleans()):
        return deep.encode()
    text = json.dumps(ev.save("author", next(ids), 0, name="deep"))
    return text.replace('"name": "deep"', f'"name": "deep", "x": {deep}').encode()


@st.composite
def shapeless_json(draw):
    """JSON of any shape that is not an envelope (a required key is missing)."""
    value = draw(any_json)
    if isinstance(value, dict) and REQUIRED <= set(value):
        del value[draw(st.sampled_from(sorted(REQUIRED)))]
    return json.dumps(value).encode()


bad_bodies = st.one_of(shapeless_json(), st.binary(max_size=200), mutated_envelopes(),
                       deep_bodies())


@st.composite
def rounds(draw):
    """Bad bodies with good messages between them, in a drawn order."""
    bad = draw(st.lists(bad_bodies, min_size=1, max_size=8))
    good = draw(st.lists(st.none() | any_json, min_size=1, max_size=4))
    items = [("bad", body) for body in bad] + [("good", extra) for extra in good]
    return draw(st.permutations(items))


@pytest.fixture
def worker(start_worker):
    process = start_worker()
    yield process
    assert process.alive
    assert process.terminate() == 0


@settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(items=rounds())
def test_fuzz__bad_bodies_are_dead_lettered_good_ones_apply_and_the_worker_lives(
        items, broker, names, worker):
    bad_ids, good_pks = set(), []
    for kind, body in items:
        number = next(ids)
        if kind == "good":
            good_pks.append(number)
            broker.publish(_good(number, body), "author", message_id=f"good-{number}")
        else:
            bad_ids.add(f"bad-{number}")
            broker.publish(body, f"cqrs.{names.queue}.author", message_id=f"bad-{number}")

    wait_until(lambda: models.AuthorRef.objects.filter(pk__in=good_pks).count()
               == len(good_pks), what="the good messages")
    wait_until(lambda: broker.count(names.dead_letter_queue) >= len(bad_ids),
               what="the dead letters")
    letters = broker.take_all(names.dead_letter_queue)
    reasons = {props.message_id: (props.headers or {}).get("cqrs-reason") for props, _ in letters}
    assert set(reasons) == bad_ids, reasons
    assert all(reasons.values()), reasons
    assert worker.alive, worker.log[-2000:]
