"""Domain metrics of the OCPI service: labels are outcomes, never partners or objects."""
from prometheus_client import Counter, Gauge

PUSH_BACKLOG = Gauge("cpms_ocpi_push_backlog", "Pushes to OCPI partners not yet delivered", multiprocess_mode="livemostrecent")
PUSHES = Counter("cpms_ocpi_pushes_total", "Pushes to OCPI partners, by outcome", ["outcome"])  # delivered, refused, retried
