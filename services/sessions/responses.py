"""The shapes of the sessions service's responses and request bodies, for /openapi.json."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field

from shared.openapi import ResponseModel

DecimalString = Annotated[str, Field(pattern=r"^-?\d+(\.\d+)?$")]
EnergySource = Literal["StopTransaction", "MeterValues.Register", "MeterValues.Interval", "Missing"]

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

class Connector(ResponseModel):
    connectorId: int
    status: str
    errorCode: str
    updatedAt: datetime

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
    conflicts: list[StartConflict]
    unbilledEnergyWh: float | None
    tariffId: UUID | None
    costAmount: DecimalString | None
    costCurrency: str | None
    pricedAt: datetime | None


class Finalized(ResponseModel):
    session: Session
    force: bool
