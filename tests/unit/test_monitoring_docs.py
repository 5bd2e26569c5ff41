"""The dashboard, and the alert rules and metric tables of the Operations page, name only
series we export."""

import json
import re
from pathlib import Path

import prometheus_client

from cqrs_outbox.replica import telemetry
from relay import metrics as relay_metrics

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "examples" / "grafana" / "cqrs-outbox.json"
SERIES = re.compile(r"\bcqrs_(?:outbox|replica)_[a-z_]+")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def exported():
    registry = prometheus_client.CollectorRegistry()
    relay_metrics.families(registry)
    telemetry._create(registry)
    return {family.name + suffix for family in registry.collect()
            for suffix in SUFFIXES[family.type]}


def monitoring_section():
    page = (ROOT / "docs" / "operations.md").read_text()
    return re.search(r"^## Monitoring\n(.*?)(?=^## )", page, re.M | re.S)[1]


def test_dashboard__queries_only_exported_series():
    panels = json.loads(DASHBOARD.read_text())["panels"]
    queried = {name for panel in panels for target in panel.get("targets", [])
               for name in SERIES.findall(target["expr"])}
    assert queried, "the dashboard queries nothing"
    assert queried <= exported(), sorted(queried - exported())


def test_alert_rules__use_only_exported_series():
    rules = re.search(r"```yaml\ngroups:(.*?)```", monitoring_section(), re.S)[1]
    used = set(SERIES.findall(rules))
    assert used == {"cqrs_outbox_oldest_pending_age_seconds", "cqrs_outbox_failed_events",
                    "cqrs_outbox_returned_events",
                    "cqrs_outbox_events_nacked_total", "cqrs_outbox_events_refused_total",
                    "cqrs_replica_events_dead_lettered_total"}
    assert used <= exported()


def test_metric_tables__list_every_exported_metric_and_no_other():
    listed = set(re.findall(r"^\| `(cqrs_\w+)`(?:, `(cqrs_\w+)`)? \|", monitoring_section(),
                            re.M))
    names = {name for pair in listed for name in pair if name}
    families = {name for name in exported()
                if not name.endswith(("_bucket", "_count", "_sum"))}
    families |= {name[: -len("_bucket")] for name in exported() if name.endswith("_bucket")}
    assert names == families
