"""docs/metrics.md against what the running system exports: every metric of /metrics is in the
catalog with its type and labels, every metric of the catalog is exported, and the catalog
covers what an operator needs."""
from __future__ import annotations

import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.support import unique_id

CATALOG = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
STANDARD_PREFIXES = ("process_", "python_")  # the client library's own collectors


def catalog() -> dict[str, tuple[str, set[str]]]:
    """name -> (type, label names), from the catalog's table rows."""
    entries = {}
    for line in CATALOG.read_text().splitlines():
        match = re.match(r"^\| `(cpms_\w+)` \| (\w+) \| ([^|]*) \|", line)
        if match:
            name, kind, labels = match.groups()
            entries[name] = (kind, set(re.findall(r"`(\w+)`", labels)))
    return entries


async def exported(api) -> dict[str, tuple[str, set[str]]]:
    """name -> (type, label names seen on samples), from the HELP/TYPE lines and samples of /metrics."""
    status, text = await api.anonymous("GET", "/metrics")
    assert status == 200
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels.setdefault(family.name, set()).update(set(sample.labels) - {"le"})
    result = {}
    for name, kind in types.items():
        family = name.removesuffix("_total") if kind == "counter" else name
        result[name] = (kind, labels.get(family, set()))
    return result


async def _traffic(api) -> None:
    """Something for most families to count, so their labels show on samples."""
    cp = unique_id()
    await api.admin("POST", "/v1/chargers", {"chargePointId": cp, "secret": "catalog-secret"})
    await api.gateway("POST", f"/v1/gateway/chargers/{cp}/auth", {"presentedSecret": "catalog-secret"})
    await api.send_events({"type": "ChargerHeartbeat", "chargePointId": cp})
    await api.anonymous("GET", "/readyz")


async def test_the_catalog_lists_exactly_the_exported_metrics(api):
    await _traffic(api)
    documented, actual = catalog(), await exported(api)
    ours = {name: spec for name, spec in actual.items() if not name.startswith(STANDARD_PREFIXES)}
    assert all(name.startswith("cpms_") for name in ours), sorted(ours)
    assert set(ours) - set(documented) == set(), "exported but not in docs/metrics.md"
    assert set(documented) - set(ours) == set(), "in docs/metrics.md but not exported"
    for name, (kind, labels) in ours.items():
        assert documented[name][0] == kind, f"{name}: exported as {kind}, documented as {documented[name][0]}"
        if labels:  # labels are visible once the metric has samples
            assert labels == documented[name][1], f"{name}: labels {sorted(labels)}, documented {sorted(documented[name][1])}"


def test_names_follow_the_prometheus_conventions():
    for name, (kind, labels) in catalog().items():
        assert name.startswith("cpms_")
        assert name.endswith("_total") == (kind == "counter"), name
        assert not re.search(r"_(ms|milliseconds|minutes|kb|mb)(_|$)", name), f"{name}: use base units"
        assert not labels & {"charge_point_id", "chargePointId", "session_id", "sessionId", "id", "user"}, name


def test_the_catalog_covers_what_operators_need():
    documented = catalog()
    needed = {
        "HTTP requests by route template and status class": ("cpms_http_requests_total", {"route", "status_class"}),
        "HTTP latency by route template": ("cpms_http_request_duration_seconds", {"route"}),
        "consumer messages by queue and result": ("cpms_consumer_messages_total", {"queue", "result"}),
        "handler latency": ("cpms_consumer_batch_duration_seconds", {"queue"}),
        "redeliveries": ("cpms_consumer_redeliveries_total", {"queue"}),
        "dead-lettered messages": ("cpms_consumer_dead_lettered_total", {"queue"}),
        "outbox backlog": ("cpms_outbox_backlog_messages", {"schema"}),
        "queue depth per queue": ("cpms_queue_messages_ready", {"queue"}),
        "DB pool in use": ("cpms_db_pool_connections_in_use", set()),
        "ingest domain counter": ("cpms_ingest_events_total", {"type", "result"}),
        "sessions finalized by energy source": ("cpms_sessions_finalized_total", {"energy_source"}),
        "settlements by status": ("cpms_billing_settlements", {"status"}),
        "command outcomes": ("cpms_commands_total", {"type", "status"}),
    }
    for need, (name, labels) in needed.items():
        assert name in documented, need
        assert labels <= documented[name][1], need
