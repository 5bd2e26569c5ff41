"""Read a process's `/metrics`, `/healthz` and `/readyz` as Prometheus and a kubelet would."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def free_port() -> int:
    """Return a TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
