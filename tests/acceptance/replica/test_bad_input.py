"""Bad input never stops a worker: each bad message is dead-lettered with its reason."""

import json

import pytest

from tests.integration.replica import events as ev
from tests.support.waiting import wait_until
from tests.testproject.replica import models

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

BAD = {
    "not-json": (b"{not json", "not JSON"),
    "not-object": (b"[1, 2]", "must be a JSON object"),
    "missing-key": ({k: v for k, v in ev.save("author", 1, 0, name="x").items()
                     if k != "instance_data"}, "'instance_data' is missing"),
    "wrong-type": ({**ev.save("author", 1, 0, name="x"), "instance_data": "x"},
                   "instance_data must be an object"),
    "wrong-type-retries": ({**ev.save("author", 1, 0, name="x"), "retries": "2"}, "retries"),
    "unknown-cqrs-id": ({**ev.save("author", 1, 0, name="x"), "cqrs_id": "nobody"},
                        "no replica model has cqrs_id 'nobody'"),
    "revision-not-int": (ev.save("author", 1, "7", name="x"), "must be an integer"),
    "field-missing": (ev.save("author", 1, 0), "lacks name"),
    "field-cannot-hold": (ev.save("all_fields", 1, 0, int_field="lots"), "int_field"),
    "expired": ({**ev.save("author", 1, 0, name="x"), "expires": "2000-01-01T00:00:00+00:00"},
                "expired"),
}


def test_bad_input__dead_lettered_with_reason_and_the_good_around_it_apply(
        broker, names, start_worker):
    worker = start_worker()
    good_pk = 100
    for message_id, (body, _) in BAD.items():
        broker.publish(ev.save("author", good_pk, 0, name="good"), "author")
        broker.publish(body, f"cqrs.{names.queue}.author", message_id=message_id)
        good_pk += 1
    broker.publish(ev.save("author", good_pk, 0, name="good"), "author")

    wait_until(lambda: models.AuthorRef.objects.count() == len(BAD) + 1, what="good rows")
    wait_until(lambda: broker.count(names.dead_letter_queue) == len(BAD), what="dead letters")
    assert worker.alive
    letters = broker.take_all(names.dead_letter_queue)
    reasons = {props.message_id: props.headers["cqrs-reason"] for props, _ in letters}
    assert set(reasons) == set(BAD)
    for message_id, (_, expected) in BAD.items():
        assert expected in reasons[message_id], (message_id, reasons[message_id])
        assert f"message {message_id}" in worker.log
    bodies = {props.message_id: body for props, body in letters}
    assert bodies["not-json"] == b"{not json"  # dead letters keep the body as it came
    assert json.loads(bodies["unknown-cqrs-id"])["cqrs_id"] == "nobody"
    assert not models.AllFieldsRef.objects.exists()
    assert worker.terminate() == 0
