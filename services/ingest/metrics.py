"""Domain metrics of the ingest service."""
from prometheus_client import Counter, Histogram

EVENTS = Counter("cpms_ingest_events_total", "Charger events received from the gateway", ["type", "result"])
AUTH = Counter("cpms_ingest_auth_total", "Charger handshakes checked", ["result"])
ARCHIVED = Counter("cpms_ingest_events_archived_total", "Events written to the raw archive")
ENVELOPE_EVENTS = Histogram(
    "cpms_ingest_envelope_events", "Events per message published (requests that arrive together share one envelope)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)
