"""Metrics of the OCPP gateway (docs/metrics.md)."""
from prometheus_client import Counter, Gauge, Histogram

CONNECTED = Gauge("cpms_gateway_connected_chargers", "Chargers connected to this gateway process", multiprocess_mode="livesum")
CALLS = Counter("cpms_gateway_calls_total", "Calls from chargers, by OCPP action and how they were answered", ["action", "outcome"])
INGEST_SECONDS = Histogram(
    "cpms_gateway_ingest_seconds", "Time from a request to ingest until its answer (events, authorize)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
COMMANDS = Counter("cpms_gateway_commands_total", "Commands to chargers, by OCPP action and outcome", ["type", "outcome"])
HANDSHAKES = Counter("cpms_gateway_handshakes_total", "WebSocket handshakes, by outcome", ["outcome"])
