"""Domain metrics of the ingest service."""
from prometheus_client import Counter

EVENTS = Counter("cpms_ingest_events_total", "Charger events received from the gateway", ["type", "result"])
AUTH = Counter("cpms_ingest_auth_total", "Charger handshakes checked", ["result"])
ARCHIVED = Counter("cpms_ingest_events_archived_total", "Events written to the raw archive")
