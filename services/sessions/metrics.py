"""Domain metrics of the sessions service. Redeliveries the inbox absorbed are counted by the
shared consumer metrics (`cpms_consumer_messages_total{result="duplicate"}`), the outbox backlog
by `cpms_outbox_backlog_messages{schema="sessions"}`."""
from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter("cpms_sessions_events_total", "Charger events taken by the sessions service", ["type", "result"])
DUPLICATES = Counter(
    "cpms_sessions_duplicates_skipped_total", "Facts skipped because they were already known (e.g. a resent meter sample)", ["kind"]
)
FINALIZED = Counter(
    "cpms_sessions_finalized_total", "Session finalizations published", ["energy_source", "kind"]
)
HANDLER_SECONDS = Histogram(
    "cpms_sessions_handler_duration_seconds", "Time a sessions handler spends on one batch of messages", ["handler"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
REGISTRY_UPDATES = Counter("cpms_sessions_registry_messages_total", "Registry messages applied", ["type"])
BILLING_UPDATES = Counter("cpms_sessions_billing_messages_total", "Billing messages taken, by effect", ["type", "result"])
REFINALIZED_AFTER_BILLING = Counter(
    "cpms_sessions_refinalized_after_billing_total",
    "Re-finalizations of sessions whose money had moved (billing keeps the billed figures)",
)
UNBILLED_ENERGY = Counter(
    "cpms_sessions_unbilled_energy_wh_total", "Energy found after a session's money had moved (shown as unbilledEnergyWh)"
)
TRANSACTION_ID_CONFLICTS = Counter(
    "cpms_sessions_transaction_id_conflicts_total",
    "TransactionStarted events that repeat a session's transaction id on another connector (flagged on the session)",
)
TRANSACTION_ID_REUSED = Counter(
    "cpms_sessions_transaction_id_reused_total",
    "Sessions opened for a transaction id the charger had used more than 24 h before",
)
CLOSED_BY_RULE = Counter(
    "cpms_sessions_closed_by_rule_total", "Sessions their charger never ended, closed by a rule", ["rule"]
)
AUTHORIZATIONS = Counter(
    "cpms_sessions_authorizations_total",
    "idTag decisions: asked by a gateway (`authorize`) or recorded on a session at its start (`session`)", ["source", "status"],
)
UNAUTHORIZED_STOPS = Counter(
    "cpms_sessions_unauthorized_stops_total", "Remote stops asked for sessions whose idTag was not Accepted at their start"
)
REALTIME_AUTHORIZATIONS = Counter(
    "cpms_sessions_realtime_authorizations_total",
    "Real-time authorizations of roaming partners' tokens asked of the ocpi service, by verdict (no_answer: none within 5 s)",
    ["verdict"],
)
PARTNER_TOKEN_UPDATES = Counter(
    "cpms_sessions_partner_token_messages_total", "Copies of roaming partners' tokens taken, by effect", ["type", "result"],
)
EVENT_LAG = Histogram(
    "cpms_sessions_event_lag_seconds",
    "End to end: from ingest's receipt of a charger event to its application by sessions (per batch, its oldest event)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
PROGRESS_ANNOUNCED = Counter(
    "cpms_sessions_progress_announced_total", "Progress of going sessions announced (session.progress): starts and meter progress",
)

# Site power limits (CONTRACT section 13)
LOAD_PROFILES = Counter("cpms_load_profiles_total", "Charging profiles set or cleared for site power limits, by action and outcome",
                        ["action", "outcome"])
SITES_OVER_LIMIT = Gauge("cpms_load_sites_over_limit", "Sites whose Active sessions drew more than their limit at the last computation",
                         multiprocess_mode="livemostrecent")
CHARGERS_FLAGGED = Counter("cpms_load_chargers_flagged_total", "Chargers flagged on their site and counted at their maximum, by reason",
                           ["reason"])
