"""How many requests one autocommit save sends to PostgreSQL: a guard on the write path.

A save's cost on a real network is its round trips. Counted by a loopback proxy between
Django and PostgreSQL (one chunk from the client is one request), over many saves, a
figure no load on the machine can move. Plain Django sends one (the INSERT). Ours sends
two on both drivers: "BEGIN; INSERT ..." for the model's row, then the event's INSERT
with "; COMMIT" (cqrs_outbox.master.onetrip). The test fails if a change adds one.
"""

from __future__ import annotations

import pytest
from django.db import connections, transaction

from tests.support.tcpproxy import TcpProxy
from tests.testproject.master.models import Author, Plain

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SAVES = 40
# Requests per autocommit create(), at most, by driver.
MOST = {"psycopg": 2, "psycopg2": 2}


@pytest.fixture
def proxied():
    """Point Django's default connection at a counting proxy for the test."""
    connection = connections["default"]
    if connection.vendor != "postgresql":
        pytest.skip("counts PostgreSQL's protocol")
    saved = dict(connection.settings_dict)
    connection.close()
    host = saved["HOST"] or "127.0.0.1"
    with TcpProxy(host, int(saved["PORT"] or 5432)) as proxy:
        connection.settings_dict.update(HOST="127.0.0.1", PORT=str(proxy.port))
        try:
            yield proxy
        finally:
            connection.close()
            connection.settings_dict.clear()
            connection.settings_dict.update(saved)


def _per_save(proxy: TcpProxy, model: type) -> float:
    model.objects.create(name="warm-up")  # connecting, and the driver's first lookups
    before = proxy.sends
    for i in range(SAVES):
        model.objects.create(name=f"row {i}")
    return (proxy.sends - before) / SAVES


def test_autocommit_create__two_requests_per_save(proxied):
    """A bare create() of a master model sends two requests on either driver; plain
    Django's one shows that the proxy counts requests."""
    driver = connections["default"].Database.__name__.split(".")[0]
    plain, ours = _per_save(proxied, Plain), _per_save(proxied, Author)
    assert plain == 1.0, f"plain Django sent {plain} requests per save"
    assert ours <= MOST[driver], f"{ours} requests per save on {driver}"
    assert Author.objects.filter(name__startswith="row ").count() == SAVES


# Requests per transaction of ten creates beyond plain Django's twelve (BEGIN, the ten
# INSERTs, COMMIT): the event INSERT, which carries the COMMIT on psycopg 3.
MORE_PER_TEN = {"psycopg": 0, "psycopg2": 1}


def _per_transaction(proxy: TcpProxy, model: type) -> float:
    model.objects.create(name="warm-up")
    before = proxy.sends
    for t in range(SAVES // 10):
        with transaction.atomic():
            for i in range(10):
                model.objects.create(name=f"row {t}.{i}")
    return (proxy.sends - before) / (SAVES // 10)


def test_ten_creates_in_one_transaction__one_request_more_at_most(proxied):
    """Ten creates in one atomic() send what plain Django's do plus at most the event
    INSERT: no request per save (no savepoint, no read-back of a new row)."""
    driver = connections["default"].Database.__name__.split(".")[0]
    plain, ours = _per_transaction(proxied, Plain), _per_transaction(proxied, Author)
    assert plain == 12.0, f"plain Django sent {plain} requests per transaction"
    assert ours - plain <= MORE_PER_TEN[driver], f"{ours} requests per transaction on {driver}"
    assert Author.objects.filter(name__startswith="row ").count() == SAVES
