"""Domain metrics of the commands service."""
from prometheus_client import Counter, Gauge, Histogram

COMMANDS = Counter("cpms_commands_total", "Commands that reached a final status", ["type", "status"])
ATTEMPTS = Counter("cpms_commands_dispatch_attempts_total", "Requests sent to the gateway, by outcome", ["result"])
DISPATCH_SECONDS = Histogram(
    "cpms_commands_dispatch_duration_seconds", "Time the gateway took to answer one command request",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30),
)
WAITING = Gauge("cpms_commands_waiting", "Commands Queued or Sent (not yet final)", multiprocess_mode="livemostrecent")
ACKS = Counter("cpms_commands_acks_total", "CommandAck events received, by whether they linked to a command yet", ["result"])
