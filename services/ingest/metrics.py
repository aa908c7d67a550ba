"""Domain metrics of the ingest service."""
from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter("cpms_ingest_events_total", "Charger events received from the gateway", ["type", "result"])
AUTH = Counter("cpms_ingest_auth_total", "Charger handshakes checked", ["result"])
ARCHIVED = Counter("cpms_ingest_events_archived_total", "Events written to the raw archive")
ENVELOPE_EVENTS = Histogram(
    "cpms_ingest_envelope_events", "Events per message published (requests that arrive together share one envelope)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)
ANOMALIES = Counter(
    "cpms_event_anomalies_total", "Events accepted with something a charger got wrong, by what it was", ["type", "anomaly"]
)
SPOOLED = Counter(
    "cpms_ingest_events_spooled_total", "Events committed to the spool because the broker did not confirm in time"
)
SPOOL_DEPTH = Gauge("cpms_ingest_spool_events", "Events in the spool, waiting for the broker", multiprocess_mode="livemostrecent")
