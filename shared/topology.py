"""The broker topology as data: every exchange and queue of the CPMS, declared from here alone.

Every queue is a durable quorum queue with a delivery limit and a dead-letter queue (`<name>.dlq`).
All names are prefixed with `CPMS_AMQP_PREFIX`, so deployments and test runs can share a broker.
"""
from __future__ import annotations

from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange


@dataclass(frozen=True)
class Exchange:
    key: str  # "events", "domain": prefixed to "<prefix>.events"
    type: aio_pika.ExchangeType = aio_pika.ExchangeType.TOPIC

    def name(self, prefix: str) -> str:
        return f"{prefix}.{self.key}"


@dataclass(frozen=True)
class Queue:
    """A durable quorum work queue: a message delivered `delivery_limit` times without an ack goes
    to its dead-letter queue `<name>.dlq` (through the `dlx` exchange), with the reason."""

    key: str  # "sessions.charger-events": prefixed to "<prefix>.sessions.charger-events"
    exchange: Exchange
    bindings: tuple[str, ...]
    delivery_limit: int = 5
    durable: bool = True

    def __post_init__(self) -> None:
        if not self.durable:
            raise ValueError(f"queue {self.key}: a quorum queue must be durable")
        if not self.bindings:
            raise ValueError(f"queue {self.key}: a queue without bindings never receives anything")
        if self.delivery_limit < 1:
            raise ValueError(f"queue {self.key}: a delivery limit below 1 dead-letters everything")

    def name(self, prefix: str) -> str:
        return f"{prefix}.{self.key}"

    def dlq_name(self, prefix: str) -> str:
        return f"{self.name(prefix)}.dlq"


EVENTS = Exchange("events")  # charger.events (envelopes of events), charger.CommandAck: what the gateway reported
DOMAIN = Exchange("domain")  # charger.*, site.*, session.*, settlement.status-changed, command.*, copy.applied: facts the services publish
DEAD_LETTER = Exchange("dlx", aio_pika.ExchangeType.DIRECT)
# Commands to chargers, routed by chargePointId to the gateway process holding the charger's socket.
# Each gateway process binds a transient queue of its own (exclusive, auto-delete: it lives as long
# as the process and its connections do; services/gateway/switchboard.py), not a quorum queue.
GATEWAY = Exchange("gateway", aio_pika.ExchangeType.DIRECT)
# Questions that want an answer within seconds (request/reply, shared/realtime_authorization.py):
# the answering processes share a transient queue they declare themselves, and the asker gets its
# answer on a reply queue of its own. A question nobody is there to take comes back at once.
RPC = Exchange("rpc", aio_pika.ExchangeType.DIRECT)

INGEST_ARCHIVE = Queue("ingest.archive", EVENTS, ("charger.#",))
INGEST_RETENTION = Queue("ingest.retention", DOMAIN, ("retention.horizon",))
SESSIONS_CHARGER_EVENTS = Queue("sessions.charger-events", EVENTS, ("charger.#",))
SESSIONS_BILLING = Queue("sessions.billing", DOMAIN, ("session.priced", "settlement.*"))
SESSIONS_REGISTRY = Queue("sessions.registry", DOMAIN, (
    "charger.registered", "charger.active-changed", "charger.site-assigned", "charger.handshake", "site.created",
    "site.power-limit-changed"))
BILLING_SESSIONS = Queue("billing.sessions", DOMAIN, ("session.finalized",))
BILLING_PROGRESS = Queue("billing.session-progress", DOMAIN, ("session.progress",))
BILLING_CHARGERS = Queue("billing.chargers", DOMAIN, ("charger.registered",))
COMMANDS_DISPATCH = Queue("commands.dispatch", DOMAIN, ("command.requested",))
COMMANDS_ACKS = Queue("commands.acks", EVENTS, ("charger.CommandAck",))
COMMANDS_UNAUTHORIZED = Queue("commands.unauthorized-sessions", DOMAIN, ("session.unauthorized",))
# Commands another service orders (site power limits: charging profiles), and how they ended.
SESSIONS_COMMAND_ANSWERS = Queue("sessions.command-answers", DOMAIN, ("command.finished",))
# Copies of the operators (ingest decides them) and the audit trail (ingest keeps it).
SESSIONS_OPERATORS = Queue("sessions.operators", DOMAIN, ("operator.changed",))
BILLING_OPERATORS = Queue("billing.operators", DOMAIN, ("operator.changed",))
COMMANDS_OPERATORS = Queue("commands.operators", DOMAIN, ("operator.changed",))
OCPI_OPERATORS = Queue("ocpi.operators", DOMAIN, ("operator.changed",))
OCPI_SESSIONS = Queue("ocpi.sessions", DOMAIN, ("session.progress", "session.finalized", "session.cost-so-far", "session.priced"))
# What roaming publishes as OCPI Locations and Tariffs (services/ocpi/consumers.py).
OCPI_LOCATIONS = Queue("ocpi.locations", DOMAIN, (
    "site.changed", "tariff.changed", "charger.site-assigned", "connector.status-changed", "connector.specs-changed",
    "charger.connection-changed"))
OPERATOR_COPIES = (SESSIONS_OPERATORS, BILLING_OPERATORS, COMMANDS_OPERATORS, OCPI_OPERATORS)
INGEST_AUDIT = Queue("ingest.audit", DOMAIN, ("audit.recorded",))
# Roaming (OCPI 2.2.1): partners' tokens copied to sessions, commands the ocpi service orders and
# their outcomes.
SESSIONS_PARTNER_TOKENS = Queue("sessions.partner-tokens", DOMAIN, ("token.partner-changed", "token.realtime-authorizers"))
COMMANDS_ORDERS = Queue("commands.orders", DOMAIN, ("command.ordered",))
OCPI_COMMAND_RESULTS = Queue("ocpi.command-results", DOMAIN, ("command.finished",))

EXCHANGES = (EVENTS, DOMAIN, DEAD_LETTER, GATEWAY, RPC)
QUEUES = (
    INGEST_ARCHIVE,
    INGEST_RETENTION,
    SESSIONS_CHARGER_EVENTS,
    SESSIONS_BILLING,
    SESSIONS_REGISTRY,
    BILLING_SESSIONS,
    BILLING_PROGRESS,
    OCPI_SESSIONS,
    BILLING_CHARGERS,
    COMMANDS_DISPATCH,
    COMMANDS_ACKS,
    COMMANDS_UNAUTHORIZED,
    SESSIONS_COMMAND_ANSWERS,
    *OPERATOR_COPIES,
    INGEST_AUDIT,
    OCPI_LOCATIONS,
    SESSIONS_PARTNER_TOKENS,
    COMMANDS_ORDERS,
    OCPI_COMMAND_RESULTS,
)


async def declare_topology(channel: AbstractChannel, prefix: str) -> dict[str, AbstractExchange]:
    """Declare every exchange, queue, DLQ and binding (idempotent); returns exchanges by key."""
    exchanges = {
        ex.key: await channel.declare_exchange(ex.name(prefix), ex.type, durable=True) for ex in EXCHANGES
    }
    for queue in QUEUES:
        dlq = await channel.declare_queue(queue.dlq_name(prefix), durable=True, arguments={"x-queue-type": "quorum"})
        await dlq.bind(exchanges[DEAD_LETTER.key], routing_key=queue.name(prefix))
        declared = await _declare_queue(channel, queue, prefix)
        for pattern in queue.bindings:
            await declared.bind(exchanges[queue.exchange.key], routing_key=pattern)
    return exchanges


async def _declare_queue(channel: AbstractChannel, queue: Queue, prefix: str):
    return await channel.declare_queue(
        queue.name(prefix),
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": queue.delivery_limit,
            "x-dead-letter-exchange": DEAD_LETTER.name(prefix),
            "x-dead-letter-routing-key": queue.name(prefix),
        },
    )


async def delete_topology(channel: AbstractChannel, prefix: str) -> None:
    """Remove every queue, DLQ and exchange of a prefix (test runs and benchmarks clean up with it)."""
    for queue in QUEUES:
        for name in (queue.name(prefix), queue.dlq_name(prefix)):
            await channel.queue_delete(name)
    for exchange in EXCHANGES:
        await channel.exchange_delete(exchange.name(prefix))
