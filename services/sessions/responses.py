"""The shapes of the sessions service's responses and request bodies, for /openapi.json."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from services.sessions.views import billed, closed_by, conflicts, connector_of, energy_json
from shared.domain import EnergySource, PartnerTokenRef
from shared.openapi import ResponseModel
from shared.responses import CostLine, DecimalString



class Connector(ResponseModel):
    """A connector: its last reported status (null until the charger reports one) and its specs."""

    connectorId: int
    status: str | None
    errorCode: str | None
    updatedAt: datetime | None
    standard: str | None
    format: str | None
    powerType: str | None
    maxVoltage: int | None
    maxAmperage: int | None
    maxElectricPower: int | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any], **given: Any) -> dict[str, Any]:
        return super().from_row(row, updatedAt=row["status_at"])


class Charger(ResponseModel):
    chargePointId: str
    isActive: bool
    vendor: str | None
    model: str | None
    firmwareVersion: str | None
    ocppVersion: str | None
    siteId: UUID | None
    lastSeenAt: datetime | None
    lastHeartbeatAt: datetime | None
    clockSkewSeconds: float | None
    createdAt: datetime
    updatedAt: datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any], **given: Any) -> dict[str, Any]:
        skew = row["clock_skew_seconds"]
        return super().from_row(row, **{"clockSkewSeconds": round(skew, 3) if skew is not None else None, **given})


class FleetCharger(Charger):
    """A charger in the fleet view: its state, whether it is online, its connectors, and its
    failed handshakes (how an unregistered charger that keeps trying shows up)."""

    registered: bool
    online: bool
    connectors: list[Connector]
    authFailures: int
    lastAuthFailureAt: datetime | None


class StartConflict(ResponseModel):
    connectorId: int | None
    idTag: str | None
    meterStartWh: int
    startedAt: datetime


class Session(ResponseModel):
    sessionId: UUID
    chargePointId: str
    connectorId: int | None
    transactionId: int
    idTag: str | None
    status: Literal["Active", "Finalized"]
    startedAt: datetime | None
    endedAt: datetime | None
    meterStartWh: int
    meterStopWh: int | None
    reason: str | None
    energyWh: float | None
    energySource: EnergySource | None
    isEstimated: bool
    finalizedAt: datetime | None
    closedBy: str | None
    authorization: Literal["Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx"] | None
    # The roaming partner's token the session was started with (OCPI CdrToken), null for any other.
    partnerToken: PartnerTokenRef | None
    conflicts: list[StartConflict]
    unbilledEnergyWh: float | None
    tariffId: UUID | None
    costAmount: DecimalString | None
    costCurrency: str | None
    costBreakdown: list[CostLine] | None
    pricedAt: datetime | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any], **given: Any) -> dict[str, Any]:
        energy, cost, currency, unbilled = row["energy_wh"], row["cost_amount"], row["cost_currency"], None
        if billed(row):
            energy, cost, currency = row["billed_energy_wh"], row["billed_amount"], row["billed_currency"]
            if row["energy_wh"] is not None and energy is not None and row["energy_wh"] != energy:
                unbilled = row["energy_wh"] - energy
        return super().from_row(
            row, connectorId=connector_of(row), meterStartWh=row["meter_start_wh"] or 0,
            idTag=row["id_tag"] if row["id_tag"] is not None else row["end_id_tag"],
            energyWh=energy_json(energy), unbilledEnergyWh=energy_json(unbilled), costAmount=cost, costCurrency=currency,
            closedBy=closed_by(row), conflicts=[{k: v for k, v in c.items() if k != "receiveOrder"} for c in conflicts(row)],
        )


class Finalized(ResponseModel):
    session: Session
    force: bool


class Token(ResponseModel):
    idTag: str
    status: Literal["Accepted", "Blocked", "Expired"]
    expiresAt: datetime | None
    parentIdTag: str | None
    siteIds: list[UUID] | None
    maxConcurrentSessions: int | None
    note: str | None
    createdAt: datetime
    updatedAt: datetime


class IdTagInfo(ResponseModel):
    status: Literal["Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx"]
    expiryDate: datetime | None = None
    parentIdTag: str | None = None


class Authorized(ResponseModel):
    idTagInfo: IdTagInfo


# --- Site power limits (CONTRACT section 13) ---------------------------------------------------------

class SessionShare(ResponseModel):
    """An Active session of a limited site: the share it was given (a flagged charger's session is
    counted at its cap), its connector's cap and its newest measured power."""

    sessionId: UUID
    chargePointId: str
    connectorId: int | None
    transactionId: int
    capW: int | None
    shareW: int | None
    measuredW: int | None
    measuredAt: datetime | None


class ChargerLoad(ResponseModel):
    """A charger of the site as load sharing sees it: the unit its profiles take, and whether it is
    flagged (it refused a profile or drew over its share: counted at its maximum until it boots)."""

    chargePointId: str
    rateUnit: Literal["W", "A"] | None
    flagged: bool
    flagReason: str | None
    flaggedAt: datetime | None


class ProfileSent(ResponseModel):
    """A charging profile sent for the site's limit (`SetChargingProfile`: the share in W and what was
    sent in the charger's unit) or cleared once the limit was gone (`ClearChargingProfile`: no
    limit), and its outcome (Pending until the charger answered)."""

    profileId: UUID
    action: Literal["SetChargingProfile", "ClearChargingProfile"]
    chargePointId: str
    connectorId: int
    purpose: Literal["TxProfile", "TxDefaultProfile"]
    transactionId: int | None
    limitW: int | None
    limit: DecimalString | None
    rateUnit: str | None
    status: Literal["Pending", "Accepted", "Rejected", "NotDelivered", "Unknown"]
    error: str | None
    sentAt: datetime
    answeredAt: datetime | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any], **given: Any) -> dict[str, Any]:
        return super().from_row(row, limit=format(row["limit_value"], "f") if row["limit_value"] is not None else None)


class SiteLoad(ResponseModel):
    """`GET /v1/sites/{siteId}/load`: the limit, what the Active sessions draw, each one's share,
    the chargers, and the newest profiles sent (at most 100) with their outcomes."""

    siteId: UUID
    maxPowerKw: DecimalString | None
    measuredW: int
    overLimit: bool
    idleReserveW: int | None
    computedAt: datetime | None
    sessions: list[SessionShare]
    chargers: list[ChargerLoad]
    profiles: list[ProfileSent]
