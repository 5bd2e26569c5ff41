"""Read a process's `/metrics`, `/healthz` and `/readyz` as Prometheus and a kubelet would."""

from __future__ import annotations

import random
import socket
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

QUIET_PORTS = range(20000, 30000)  # below Linux's ephemeral range (32768-60999)


def free_port() -> int:
    """Return a TCP port nothing listens on right now, outside the ephemeral range.

    A port the kernel hands out for port 0 can be handed to any other process the
    moment it is freed, which breaks a test that closes a listener and opens it again.
    """
    while True:
        port = random.choice(QUIET_PORTS)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def get(port: int, path: str) -> tuple[int, bytes]:
    """GET a path; return (status, body), or (0, b'') while nothing listens."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, ConnectionError):
        return 0, b""


def metrics(port: int) -> dict[str, float] | None:
    """Scrape /metrics; return each sample name's value summed over its labels."""
    status, body = get(port, "/metrics")
    if status != 200:
        return None
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


def labelled(port: int, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Scrape /metrics; return one sample name's values by their label sets."""
    status, body = get(port, "/metrics")
    assert status == 200, body
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
        if s.name == name
    }
