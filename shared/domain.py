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


class PartnerTokenRef(BaseModel):
    """Which roaming partner's token an idTag is (OCPI 2.2.1 CdrToken): the eMSP's party and the
    token's uid, type and contract."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    countryCode: str
    partyId: str
    uid: str
    type: str
    contractId: str


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
    # The roaming partner's token the session was started with (OCPI 2.2.1 cdr_token), None for any
    # other idTag: whose session it is, for that partner's CDR.
    partnerToken: PartnerTokenRef | None = None
    # Whether the partner judged the token in real time (asked at the session's start) rather than
    # by its stored token: OCPI's auth_method AUTH_REQUEST, else WHITELIST. None: not a partner's.
    realtimeAuthorized: bool | None = None


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
    # What an OCPI 2.2.1 CDR states of the price (services/billing/cdr_figures.py): the totals and
    # their costs as the settlement carries them, the charging periods with their dimensions, the
    # tariff as OCPI writes it; and the site (the Location) the session was priced for.
    siteId: UUID | None = None
    figures: dict | None = None
    location: dict | None = None  # the site as a CDR states its Location (id, name, address, ...)
    partnerToken: PartnerTokenRef | None = None  # the session's, as its finalization said it


class SessionProgress(DomainMessage):
    """sessions: how far a session of a roaming partner's token that is going has come, at its start
    and then as its meter moves (at most every CPMS_SESSION_PROGRESS_SECONDS per session); its end is
    `session.finalized`. `sequence` grows with each announcement of the session; `periods` as in
    `session.finalized`, up to `at`, the newest reading."""
    routing_key: ClassVar[str] = "session.progress"
    sessionId: UUID
    chargePointId: str
    connectorId: int | None
    transactionId: int
    idTag: str | None
    startedAt: AwareDatetime
    at: AwareDatetime
    energyWh: Decimal
    sequence: int
    periods: list[dict]
    partnerToken: PartnerTokenRef | None = None  # as in `session.finalized`
    connector: dict | None = None  # what its connector is: standard, format, powerType (OCPI's), null when not said
    realtimeAuthorized: bool | None = None  # as in `session.finalized`


class SessionCostSoFar(DomainMessage):
    """billing: a going session's cost so far, priced as `session.priced` prices a finalized one
    (the tariff in force at its start, the same engine) for the progress of that `sequence`. No
    tariff applies: `tariffId`, `costAmount` and `figures` are null, `currency` the default."""
    routing_key: ClassVar[str] = "session.cost-so-far"
    sessionId: UUID
    sequence: int
    currency: str
    tariffId: UUID | None = None
    costAmount: Decimal | None = None
    siteId: UUID | None = None
    figures: dict | None = None
    location: dict | None = None
    pricedAt: AwareDatetime
    partnerToken: PartnerTokenRef | None = None  # the session's, as its progress said it


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


def payload(message: DomainMessage) -> dict:
    return message.model_dump(mode="json")



# --- roaming (OCPI 2.2.1): tokens of partners, their real-time authorization, their commands ------------

WhitelistType = Literal["ALWAYS", "ALLOWED", "ALLOWED_OFFLINE", "NEVER"]


class PartnerTokenChanged(DomainMessage):
    """ocpi: a partner pushed a token (PUT or PATCH), or handed one over with a START_SESSION or
    RESERVE_NOW; sessions keeps a copy and authorizes the token's uid as an idTag by it. The
    newest `lastUpdated` of a (countryCode, partyId, uid, type) wins."""
    routing_key: ClassVar[str] = "token.partner-changed"
    countryCode: str
    partyId: str
    uid: str
    type: str
    contractId: str
    valid: bool
    whitelist: WhitelistType
    groupId: str | None = None
    lastUpdated: AwareDatetime


class Party(BaseModel):
    model_config = ConfigDict(frozen=True)
    countryCode: str
    partyId: str


class RealtimeAuthorizers(DomainMessage):
    """ocpi: the partners that answer real-time authorization now (the whole set; the newest `at`
    wins). sessions asks the ocpi service about an unknown idTag only while this set is not empty."""
    routing_key: ClassVar[str] = "token.realtime-authorizers"
    parties: list[Party]
    at: AwareDatetime


class CommandOrdered(DomainMessage):
    """another service (ocpi): deliver this command to a charger and announce its outcome
    (`command.finished`). The idempotency key makes a repeated message one command."""
    routing_key: ClassVar[str] = "command.ordered"
    type: str
    chargePointId: str
    idempotencyKey: str
    payload: dict
    ttlSeconds: float | None = None
    at: AwareDatetime


class CommandFinished(DomainMessage):
    """commands: an ordered command reached its end: Acked with the charger's answer (`response`),
    or Failed with `error` and `outcome` (rejected, call_error: the charger refused with a CallError,
    its error in `response`; timeout: the charger may have acted; expired: never delivered in its
    time to live)."""
    routing_key: ClassVar[str] = "command.finished"
    commandId: UUID
    idempotencyKey: str
    type: str
    chargePointId: str
    status: Literal["Acked", "Failed"]
    outcome: Literal["acked", "rejected", "call_error", "timeout", "expired", "unknown"]
    response: dict | None = None
    error: str | None = None
    at: AwareDatetime


# --- What roaming (the ocpi service) publishes to partners: sites, tariffs, connectors ---------------

class SiteChanged(DomainMessage):
    """billing: a site was created or its own fields replaced: everything an OCPI Location says of it
    (coordinates as OCPI's decimal strings, as given). The newest `at` wins."""
    routing_key: ClassVar[str] = "site.changed"
    siteId: UUID
    name: str
    timeZone: str
    address: str | None = None
    city: str | None = None
    postalCode: str | None = None
    country: str | None = None  # ISO 3166 alpha-3
    latitude: str | None = None
    longitude: str | None = None
    publish: bool = True
    at: AwareDatetime


class TariffChanged(DomainMessage):
    """billing: a tariff was created, or closed by its site's next one (`activeUntil`); `ocpi` is
    the tariff as OCPI 2.2.1 writes it (prices as decimal strings). The newest `at` wins."""
    routing_key: ClassVar[str] = "tariff.changed"
    tariffId: UUID
    siteId: UUID
    currency: str
    ocpi: dict
    activeFrom: AwareDatetime
    activeUntil: AwareDatetime | None = None
    at: AwareDatetime


class ConnectorStatusReported(DomainMessage):
    """sessions: a connector's current status changed (the newest by its charger's order: `at`,
    then `receiveOrder`, then `eventId`)."""
    routing_key: ClassVar[str] = "connector.status-changed"
    chargePointId: str
    connectorId: int
    status: str  # OCPP 1.6 ChargePointStatus
    errorCode: str
    at: AwareDatetime
    receiveOrder: int
    eventId: str


class ConnectorSpecsChanged(DomainMessage):
    """sessions: an operator described a connector (OCPI ConnectorType, ConnectorFormat, PowerType;
    V, A, W); a field left out is unknown. The newest `at` wins."""
    routing_key: ClassVar[str] = "connector.specs-changed"
    chargePointId: str
    connectorId: int
    standard: str | None = None
    format: str | None = None
    powerType: str | None = None
    maxVoltage: int | None = None
    maxAmperage: int | None = None
    maxElectricPower: int | None = None
    at: AwareDatetime


class ChargerConnectionChanged(DomainMessage):
    """sessions: a charger's `online` (the fleet view's rule, CONTRACT section 8) turned: it connected
    to the CPMS's gateway or was heard again, it left the gateway (ChargerDisconnected), or it was
    silent for CPMS_CHARGER_OFFLINE_AFTER_SECONDS (behind the reference gateway, the only sign).
    Once per turn, by our clock; the newest `at` wins."""
    routing_key: ClassVar[str] = "charger.connection-changed"
    chargePointId: str
    online: bool
    at: AwareDatetime
