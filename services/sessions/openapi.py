"""The sessions service's operations and response shapes, for /openapi.json."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field

from services.sessions.models import FinalizeQuery
from shared.openapi import Fragment, Operation, ResponseModel, page_of
from shared.pagination import PageQuery

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


FRAGMENT = Fragment("sessions", (
    Operation("GET", "/v1/chargers/{chargePointId}", "A charger as its events describe it", "admin", {200: Charger}),
    Operation("GET", "/v1/chargers/{chargePointId}/connectors", "A charger's connectors", "admin",
              {200: page_of(Connector)}, query=PageQuery),
    Operation("GET", "/v1/chargers/{chargePointId}/sessions", "A charger's sessions, newest first", "admin",
              {200: page_of(Session)}, query=PageQuery),
    Operation("GET", "/v1/sessions/{sessionId}", "One session", "admin", {200: Session}),
    Operation("POST", "/v1/sessions/{sessionId}/finalize", "Finalize a session (force: recompute it)", "admin",
              {200: Finalized}, query=FinalizeQuery, errors=(409,)),
), "Chargers' live state, connectors and charging sessions")
