"""Domain metrics of the billing service."""
from prometheus_client import Counter, Gauge

SESSIONS_PRICED = Counter("cpms_billing_sessions_priced_total", "Session finalizations priced (first pricing and re-pricing)")
SESSIONS_NOT_PRICED = Counter(
    "cpms_billing_sessions_not_priced_total", "Session finalizations that could not be priced, by reason", ["reason"],
)
REPRICING_REFUSED = Counter(
    "cpms_billing_repricing_refused_total", "Re-finalizations left unpriced because their settlement had left Pending",
)
SETTLEMENTS = Gauge("cpms_billing_settlements", "Settlements by status (read from the database)", ["status"], multiprocess_mode="livemostrecent")
OLDEST_SETTLEMENT = Gauge(
    "cpms_billing_oldest_settlement_age_seconds", "How long the settlement longest in a status has been in it", ["status"],
    multiprocess_mode="livemostrecent",
)
TRANSITIONS = Counter(
    "cpms_billing_settlement_transitions_total", "Settlement transition requests, by target status and result", ["to", "result"],
)
AMOUNT_SETTLED = Counter(
    "cpms_billing_amount_settled_minor_units_total", "Money of confirmed settlements, in the currency's minor units", ["currency"],
)
SESSIONS_PRICED_SO_FAR = Counter(
    "cpms_billing_sessions_priced_so_far_total", "Progress of going sessions priced (their cost so far, announced, never settled)",
)
