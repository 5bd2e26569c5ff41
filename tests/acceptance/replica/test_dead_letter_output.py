"""`cqrs_dead_letters retry` prints the count and the ids; bodies only with --verbose.
A replica pointed at an exchange of another type is told which setting to change."""

import json

import pytest

from tests.acceptance.replica import support
from tests.integration.replica import events as ev

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

SETTINGS = "tests.testproject.settings"
SECRET_NAME = "Jane Private"


def _park(broker, names, count):
    """Put `count` dead letters in the queue, as a consumer leaves them."""
    for pk in range(1, count + 1):
        broker.publish(ev.save("author", pk, 0, name=SECRET_NAME),
                       f"cqrs.{names.dead_letter_queue}.author", message_id=f"m{pk}")


def test_retry__prints_count_and_ids_not_bodies(broker, names, worker_env):
    _park(broker, names, 3)
    out = support.run_django(["cqrs_dead_letters", "retry"], SETTINGS, worker_env)
    assert out.splitlines() == [
        "Total dead letters: 3",
        "Retrying: 1/3 message m1 author:1",
        "Retrying: 2/3 message m2 author:2",
        "Retrying: 3/3 message m3 author:3",
        "Retried 3 dead letters.",
    ]
    assert SECRET_NAME not in out
    assert broker.count(names.queue) == 3


def test_retry_verbose__also_prints_each_body(broker, names, worker_env):
    _park(broker, names, 1)
    out = support.run_django(["cqrs_dead_letters", "retry", "--verbose"], SETTINGS, worker_env)
    lines = out.splitlines()
    assert lines[1] == "Retrying: 1/1 message m1 author:1"
    assert json.loads(lines[2])["instance_data"]["name"] == SECRET_NAME
    assert json.loads(lines[2])["retries"] == 0


def test_consumer__exchange_of_another_type_names_the_exchange_and_exits_1(
        start_worker, worker_env):
    worker = start_worker(env={"CQRS_TEST_EXCHANGE": "amq.direct"})
    assert worker.wait(support.WAIT) == 1
    [line] = [line for line in worker.log.strip().splitlines()
              if not line.startswith(support.CONSUMER_STARTUP)]
    assert "CQRS['exchange'] names exchange 'amq.direct', which exists as a direct exchange" \
        in line
    assert "durable topic exchange" in line and "Traceback" not in line


def test_retry__moves_a_100000_level_nested_letter_and_every_letter_behind_it(
        broker, names, worker_env):
    """The letters were dead-lettered because they are bad; retry sends each back (a body
    it cannot renew goes back unchanged, and its line says why) and goes on."""
    route = f"cqrs.{names.dead_letter_queue}.author"
    nested = b"[" * 100_000 + b"]" * 100_000
    huge = b'{"cqrs_id": "author", "x": "' + b"a" * (17 * 1024 * 1024) + b'"}'
    letters = [("nested", nested), ("not-json", b"{nope"), ("not-utf8", b'{"a": "\xff\xfe"}'),
               ("huge", huge), ("valid", json.dumps(ev.save("author", 1, 0, name="ok")).encode())]
    for message_id, body in letters:
        broker.publish(body, route, message_id=message_id)
    out = support.run_django(["cqrs_dead_letters", "retry"], SETTINGS, worker_env, timeout=300)
    lines = out.splitlines()
    assert lines[0] == "Total dead letters: 5"
    assert lines[1] == ("Retrying: 1/5 message nested: sent back unchanged, body nests arrays "
                        "and objects deeper than the limit of 64 levels "
                        "(CQRS['replica']['max_depth'])")
    assert lines[2].startswith("Retrying: 2/5 message not-json: sent back unchanged, body is "
                               "not JSON: ")
    assert lines[3].startswith("Retrying: 3/5 message not-utf8: sent back unchanged, body is "
                               "not JSON: ")
    assert lines[4] == (f"Retrying: 4/5 message huge: sent back unchanged, body is "
                        f"{len(huge)} bytes, over the limit of 16777216 bytes "
                        "(CQRS['replica']['max_body_size'])")
    assert lines[5] == "Retrying: 5/5 message valid author:1"
    assert lines[6] == "Retried 5 dead letters."
    assert broker.count(names.dead_letter_queue) == 0
    moved = {props.message_id: body for props, body in broker.take_all(names.queue)}
    assert moved.keys() == {"nested", "not-json", "not-utf8", "huge", "valid"}
    assert moved["nested"] == nested and moved["not-utf8"] == b'{"a": "\xff\xfe"}'
    assert json.loads(moved["valid"])["retries"] == 0


def test_dump__escapes_control_characters_in_bodies_and_reasons(broker, names, worker_env):
    route = f"cqrs.{names.dead_letter_queue}.author"
    body = '{"name": "\x1b[2J\x1b[31mred\x9b1m\u2028"}'.encode()
    broker.publish(body, route, message_id="esc",
                   headers={"cqrs-reason": "bad message: \x1b]0;owned\x07"})
    plain = support.run_django(["cqrs_dead_letters", "dump"], SETTINGS, worker_env)
    reasons = support.run_django(["cqrs_dead_letters", "dump", "--with-reasons"], SETTINGS,
                                 worker_env)
    for out in (plain, reasons):
        assert not any(ord(c) < 32 and c != "\n" or 0x7f <= ord(c) <= 0x9f or c == "\u2028"
                       for c in out), repr(out)
    assert plain.strip() == r'{"name": "\x1b[2J\x1b[31mred\x9b1m\u2028"}'
    letter = json.loads(reasons)
    assert letter == {"reason": "bad message: \x1b]0;owned\x07", "body": body.decode()}
    assert broker.count(names.dead_letter_queue) == 1
