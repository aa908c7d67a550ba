"""Messages the services publish to each other on the domain exchange: the only way one service
learns about another's state. Each model names its routing key; payloads are JSON objects with
camelCase fields, money and energy as decimal strings, times in UTC."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict


class DomainMessage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    routing_key: ClassVar[str]


class ChargerRegistered(DomainMessage):
    """ingest: a charger was registered (or re-registered by seed-charger)."""
    routing_key: ClassVar[str] = "charger.registered"
    chargePointId: str
    isActive: bool
    siteId: UUID | None = None
    at: AwareDatetime


class ChargerActiveChanged(DomainMessage):
    """ingest: an operator switched a charger on or off."""
    routing_key: ClassVar[str] = "charger.active-changed"
    chargePointId: str
    isActive: bool
    at: AwareDatetime


class ChargerHandshake(DomainMessage):
    """ingest: a charger tried to open its WebSocket (registered or not), and whether it got in."""
    routing_key: ClassVar[str] = "charger.handshake"
    chargePointId: str
    allowed: bool
    at: AwareDatetime


class ChargerSiteAssigned(DomainMessage):
    """billing: a charger now belongs to a site."""
    routing_key: ClassVar[str] = "charger.site-assigned"
    chargePointId: str
    siteId: UUID
    at: AwareDatetime


class SiteCreated(DomainMessage):
    """billing: a site exists; the services that filter or check by site know it from this."""
    routing_key: ClassVar[str] = "site.created"
    siteId: UUID
    name: str
    at: AwareDatetime


EnergySource = Literal["StopTransaction", "MeterValues.Register", "MeterValues.Interval", "Missing"]


class SessionFinalized(DomainMessage):
    """sessions: a session was finalized, or re-finalized with a higher `revision`."""
    routing_key: ClassVar[str] = "session.finalized"
    sessionId: UUID
    chargePointId: str
    connectorId: int | None
    transactionId: int
    startedAt: AwareDatetime | None
    endedAt: AwareDatetime | None
    energyWh: Decimal | None
    energySource: EnergySource
    isEstimated: bool
    finalizedAt: AwareDatetime
    revision: int
    # When its energy flowed and whether it was charging or parked ({start, end, energyWh, charging});
    # the periods' energies add up to energyWh. Absent from older senders: one period, start to end.
    periods: list[dict] | None = None


class SessionPriced(DomainMessage):
    """billing: the price of a session at a given finalization revision, the energy it is for, and
    what each price component of the tariff billed (`costBreakdown`, decimal strings)."""
    routing_key: ClassVar[str] = "session.priced"
    sessionId: UUID
    tariffId: UUID
    costAmount: Decimal
    costCurrency: str
    pricedAt: AwareDatetime
    revision: int
    energyWh: Decimal | None = None
    costBreakdown: list[dict] | None = None


class SessionUnauthorized(DomainMessage):
    """sessions: a session is going with an idTag that was not Accepted at its start (the gateway
    let it start without asking); commands asks the charger to stop it, once per session."""
    routing_key: ClassVar[str] = "session.unauthorized"
    sessionId: UUID
    chargePointId: str
    transactionId: int
    authorization: str
    at: AwareDatetime

    @property
    def idempotency_key(self) -> str:
        return f"session:{self.sessionId}:unauthorized-stop"


class SettlementStatus(StrEnum):
    """The settlement vocabulary, spelled here alone (billing's transition graph is in
    services/billing/settlements.py)."""

    PENDING = "Pending"
    SUBMITTED = "Submitted"
    CONFIRMED = "Confirmed"
    FAILED = "Failed"


SETTLEMENT_STATUSES: tuple[SettlementStatus, ...] = tuple(SettlementStatus)
MONEY_HAS_MOVED: tuple[SettlementStatus, ...] = (SettlementStatus.SUBMITTED, SettlementStatus.CONFIRMED)  # decided by billing alone
# How far along a settlement is: of two statuses stamped with the same `at`, the further one wins.
SETTLEMENT_PROGRESS: tuple[SettlementStatus, ...] = (
    SettlementStatus.PENDING, SettlementStatus.FAILED, SettlementStatus.SUBMITTED, SettlementStatus.CONFIRMED)


def settlement_order(at: datetime, status: str) -> tuple[datetime, int]:
    """Which of two statuses of a settlement is the newer: the later, and on equal `at` the one
    further along, so copies converge whatever order the messages come in."""
    return at, SETTLEMENT_PROGRESS.index(status) + 1 if status in SETTLEMENT_PROGRESS else 0


class SettlementStatusChanged(DomainMessage):
    """billing: a settlement was created or changed status, with what it bills. Billing owns "money
    has moved" (Submitted or Confirmed): from then on the session shows these figures."""
    routing_key: ClassVar[str] = "settlement.status-changed"
    settlementId: UUID
    sessionId: UUID
    status: SettlementStatus
    at: AwareDatetime
    amount: Decimal | None = None
    currency: str | None = None
    energyWh: Decimal | None = None


class CopyApplied(DomainMessage):
    """a copy's keeper: these messages of another service (a registration, an activation, a site, a
    settlement status, an operator) are in its copy now, so the write that caused them can answer
    (read your writes). `keeper`: the queue whose consumer applied them."""
    routing_key: ClassVar[str] = "copy.applied"
    messageIds: list[str]
    keeper: str | None = None


class RetentionHorizon(DomainMessage):
    """sessions: no session whose money is not settled started before `keepFrom` (with a margin for
    chargers' clocks); ingest may prune archived events received before it."""
    routing_key: ClassVar[str] = "retention.horizon"
    keepFrom: AwareDatetime
    at: AwareDatetime


class OperatorChanged(DomainMessage):
    """ingest: an operator was created (or given a new token) or revoked; the other services keep a
    copy, so every process checks tokens in its own schema. Only the token's hash travels."""
    routing_key: ClassVar[str] = "operator.changed"
    name: str
    role: str
    tokenHash: str
    createdAt: AwareDatetime
    revoked: bool
    at: AwareDatetime


class AuditFields(BaseModel):
    """What an audit entry says: when, who (the operator and its role), what (the method, the path,
    the entity and its id), and the entity as the API showed it before and after. The message
    below carries it, and ingest's trail answers with it."""

    entryId: UUID
    at: AwareDatetime
    actor: str
    role: str
    method: str
    path: str
    entity: str
    entityId: str | None
    before: dict | None
    after: dict | None


class AuditRecorded(DomainMessage, AuditFields):
    """any service: an operator's write it accepted; ingest keeps the trail (`GET /v1/audit`)."""
    routing_key: ClassVar[str] = "audit.recorded"


class CommandRequested(DomainMessage):
    """commands: a command was stored and waits for dispatch to the gateway."""
    routing_key: ClassVar[str] = "command.requested"
    commandId: UUID


# --- Site power limits (CONTRACT section 13) ---------------------------------------------------

class SitePowerLimitChanged(DomainMessage):
    """billing: a site's grid limit (`maxPowerKw`, None: no limit) as of `at`; sessions shares it."""
    routing_key: ClassVar[str] = "site.power-limit-changed"
    siteId: UUID
    maxPowerKw: Decimal | None
    at: AwareDatetime


class CommandOrdered(DomainMessage):
    """any service: a command it wants sent to a charger; commands stores it once per idempotency
    key, delivers it as any command, and tells how it ended (`command.answered`)."""
    routing_key: ClassVar[str] = "command.ordered"
    idempotencyKey: str
    type: str
    chargePointId: str
    payload: dict
    at: AwareDatetime


# How an ordered command ended: the charger answered (`response`); the gateway or the charger
# refused it (sending it again changes nothing); it never reached the charger; or nobody knows
# whether the charger acted on it.
CommandOutcome = Literal["Answered", "Refused", "NotDelivered", "Unknown"]


class CommandAnswered(DomainMessage):
    """commands: an ordered command is final."""
    routing_key: ClassVar[str] = "command.answered"
    commandId: UUID
    idempotencyKey: str
    type: str
    chargePointId: str
    outcome: CommandOutcome
    response: dict | None = None
    error: str | None = None
    at: AwareDatetime


def payload(message: DomainMessage) -> dict:
    return message.model_dump(mode="json")

