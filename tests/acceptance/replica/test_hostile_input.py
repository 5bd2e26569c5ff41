"""Hostile bodies and values: each is dead-lettered in the batch it arrived in, the worker
stays up, the good messages around it apply, and the log stays one line per event."""

import json

import pytest

from tests.integration.replica import events as ev
from tests.support.waiting import wait_until
from tests.testproject.replica import models

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

DEPTH = 1000
MAX_BODY_SIZE = 16 * 1024 * 1024  # the default limit, bytes


def _nested_body(depth):
    body = ev.save("author", 1, 0, name="deep")
    text = json.dumps(body)
    deep = "[" * depth + "]" * depth
    return text.replace('"name": "deep"', f'"name": "deep", "junk": {deep}').encode()


def _letters(broker, names):
    return {props.message_id: (props, body) for props, body in broker.take_all(
        names.dead_letter_queue)}


def _publish_then_start(broker, names, start_worker, bad, good_pks=(100,)):
    """Publish the bad bodies and good ones, then start the worker: one batch holds all."""
    for message_id, body in bad.items():
        broker.publish(body, f"cqrs.{names.queue}.author", message_id=message_id)
    for pk in good_pks:
        broker.publish(ev.save("author", pk, 0, name="good"), "author", message_id=f"good{pk}")
    return start_worker()


def _assert_dead_at_first_delivery(worker, letters, expected):
    """Each was dead-lettered by the batch it first came in: once, never retried, and the
    worker neither reconnected nor restarted."""
    log = worker.log
    for message_id, words in expected.items():
        props, _ = letters[message_id]
        reason = props.headers["cqrs-reason"]
        assert not reason.startswith("failed after"), reason
        for word in words:
            assert word in reason, (message_id, reason)
        assert log.count(f"Dead-lettered message {message_id} ") == 1, log
    assert "retry 1 in" not in log and "reconnecting" not in log, log


def test_nested_json__dead_lettered_in_its_batch_and_the_good_message_applies(
        broker, names, start_worker):
    body = _nested_body(DEPTH)
    assert len(body) < 2500  # a small body, as reported
    worker = _publish_then_start(broker, names, start_worker, {"deep": body})
    wait_until(lambda: models.AuthorRef.objects.filter(pk=100).exists(), what="the good row")
    wait_until(lambda: broker.count(names.dead_letter_queue) == 1, what="the dead letter")
    assert worker.alive
    letters = _letters(broker, names)
    _assert_dead_at_first_delivery(worker, letters, {"deep": ["deeper than the limit of 64"]})
    assert letters["deep"][1] == body  # kept as it came
    assert worker.terminate() == 0


def test_oversized_body__dead_lettered_unread_with_the_limit_named(broker, names, start_worker):
    padding = "x" * (MAX_BODY_SIZE + 10)
    body = json.dumps(ev.save("author", 1, 0, name=padding)).encode()
    worker = _publish_then_start(broker, names, start_worker, {"huge": body})
    wait_until(lambda: models.AuthorRef.objects.filter(pk=100).exists(), what="the good row")
    wait_until(lambda: broker.count(names.dead_letter_queue) == 1, what="the dead letter")
    assert worker.alive
    letters = _letters(broker, names)
    words = [f"over the limit of {MAX_BODY_SIZE} bytes", "max_body_size"]
    _assert_dead_at_first_delivery(worker, letters, {"huge": words})
    assert len(worker.log.splitlines()[-1]) < 1000  # the log quotes only the start
    assert worker.terminate() == 0


BAD_VALUES = {
    "revision-2**63": (ev.save("author", 1, 2**63, name="a"),
                       ["cqrs_revision", str(2**63), "out of range for column 'cqrs_revision'"]),
    "pk-2**70": (ev.save("author", 2**70, 0, name="a"), [str(2**70), "column 'id'"]),
    "revision-negative": (ev.save("author", 3, -1, name="a"), ["cqrs_revision", ">= 0", "-1"]),
    "string-too-long": (ev.save("author", 4, 0, name="n" * 101),
                        ["instance_data.name", "column 'name' holds at most 100"]),
    "int-out-of-range": (ev.save("all_fields", 5, 0, int_field=2**40),
                         ["int_field", str(2**40), "out of range"]),
    # Refused by the database itself (numeric overflow): a DataError, not retried.
    "decimal-overflow": (ev.save("all_fields", 6, 0, decimal_field="1e20"),
                         ["the database refused a value", "DataError"]),
    # Refused inside a model's own cqrs_create: the manager logs and returns None, and
    # the consumer learns the reason without the hook raising.
    "hook-refused": (ev.save("filtered", 7, 0, name="s" * 150),
                     ["FilteredRef.cqrs_save() returned None", "CQRS create error: pk = 7",
                      "DataError"]),
}


def test_bad_values__each_dead_lettered_in_its_batch_without_retries(
        broker, names, start_worker):
    bad = {message_id: json.dumps(body).encode()
           for message_id, (body, _) in BAD_VALUES.items()}
    worker = _publish_then_start(broker, names, start_worker, bad, good_pks=(100, 101))
    wait_until(lambda: models.AuthorRef.objects.filter(pk__in=[100, 101]).count() == 2,
               what="the good rows")
    wait_until(lambda: broker.count(names.dead_letter_queue) == len(BAD_VALUES),
               what="the dead letters")
    assert worker.alive
    letters = _letters(broker, names)
    expected = {message_id: words for message_id, (_, words) in BAD_VALUES.items()}
    _assert_dead_at_first_delivery(worker, letters, expected)
    assert broker.count(names.delay_queue) == 0
    assert not models.AllFieldsRef.objects.exists() and not models.FilteredRef.objects.exists()
    assert worker.terminate() == 0


def test_log_injection__message_content_and_database_errors_never_split_a_line(
        broker, names, start_worker):
    forged = "\nCRITICAL forged line\r\x00\x1b[2J"
    bad = {
        "not-json": f"{{oops{forged}".encode(),
        "bad-key": json.dumps({**ev.save("author", 1, 0, name="a"),
                               "signal_type": f"SAVE{forged}"}).encode(),
        # PostgreSQL's error text for this one spans lines.
        "db-error": json.dumps(ev.save("filtered", 2, 0, name="s" * 150)).encode(),
    }
    worker = _publish_then_start(broker, names, start_worker, bad)
    broker.publish(ev.save("author", f"{forged}", 0, name="a"), "author", message_id="bad-pk")
    wait_until(lambda: broker.count(names.dead_letter_queue) == 4, what="the dead letters")
    assert worker.terminate() == 0
    log = worker.log
    lines = log.splitlines()
    assert not any(line.startswith("CRITICAL forged") for line in lines), log
    assert "\x00" not in log and "\x1b" not in log and "\r" not in log
    assert "\\nCRITICAL forged line\\r\\x00\\x1b[2J" in log
    assert "CQRS create error: pk = 2 (filtered)" in log
    for line in lines:
        if "CQRS create error" in line:
            assert "DataError" in line or "too long" in line, line


def test_failing_message_that_cannot_be_encoded_for_its_retry__dead_lettered(
        broker, names, start_worker):
    # A lone surrogate is valid JSON text but no UTF-8: the retry copy cannot be written.
    body = {**ev.save("flaky", 1, 0, name="fail:always"), "extra": "\ud800"}
    worker = _publish_then_start(broker, names, start_worker,
                                 {"surrogate": json.dumps(body).encode()})
    wait_until(lambda: models.AuthorRef.objects.filter(pk=100).exists(), what="the good row")
    wait_until(lambda: broker.count(names.dead_letter_queue) == 1, what="the dead letter")
    assert worker.alive
    [(props, _)] = broker.take_all(names.dead_letter_queue)
    assert "UnicodeEncodeError" in props.headers["cqrs-reason"]
    assert worker.terminate() == 0
