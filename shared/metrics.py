"""Metrics every service shares (HTTP, consumers, outbox, pool, queues). Domain metrics live
beside their service. Labels are bounded: route templates, queue names, results; never ids.
Under several workers (shared/workers.py) a gauge says how its workers' values combine: what
each reads from the database or the broker is the latest reading, what each holds is a sum."""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

# `_created` series double every counter for no use on a dashboard.
disable_created_metrics()

HTTP_REQUESTS = Counter(
    "cpms_http_requests_total", "HTTP requests answered", ["method", "route", "status_class"]
)
HTTP_LATENCY = Histogram(
    "cpms_http_request_duration_seconds", "HTTP request latency", ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CONSUMER_MESSAGES = Counter(
    "cpms_consumer_messages_total", "Messages taken from a queue, by outcome", ["queue", "result"]
)
CONSUMER_REDELIVERIES = Counter(
    "cpms_consumer_redeliveries_total", "Messages the broker delivered again", ["queue"]
)
CONSUMER_DEAD_LETTERED = Counter(
    "cpms_consumer_dead_lettered_total", "Messages moved to a dead-letter queue", ["queue"]
)
CONSUMER_BATCH_SECONDS = Histogram(
    "cpms_consumer_batch_duration_seconds", "Time to apply one batch of messages in one transaction", ["queue"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
CONSUMER_BATCH_SIZE = Histogram(
    "cpms_consumer_batch_size", "Messages applied per transaction", ["queue"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048),
)
BROKER_CONFIRM_SECONDS = Histogram(
    "cpms_broker_confirm_duration_seconds", "Time from publishing a persistent message to the broker's confirm", ["exchange"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
OUTBOX_PUBLISHED = Counter("cpms_outbox_published_total", "Outbox messages published and confirmed", ["schema"])
OUTBOX_BACKLOG = Gauge("cpms_outbox_backlog_messages", "Outbox messages not yet published", ["schema"], multiprocess_mode="livemostrecent")
QUEUE_DEPTH = Gauge("cpms_queue_messages_ready", "Messages ready in a queue, read from the broker", ["queue"], multiprocess_mode="livemostrecent")
DB_POOL_IN_USE = Gauge("cpms_db_pool_connections_in_use", "Database connections checked out of the pool", multiprocess_mode="livesum")
DB_POOL_SIZE = Gauge("cpms_db_pool_connections", "Database connections open in the pool", multiprocess_mode="livesum")
DEPENDENCY_UP = Gauge("cpms_dependency_up", "1 when a dependency answered the last readiness check", ["dependency"], multiprocess_mode="livemin")
PRUNED = Counter("cpms_retention_pruned_rows_total", "Rows deleted by a retention prune", ["table"])
