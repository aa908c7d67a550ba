"""The shapes of the billing service's responses and request bodies, for /openapi.json."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import Field

from shared.domain import SettlementStatus
from shared.openapi import ResponseModel

DecimalString = Annotated[str, Field(pattern=r"^-?\d+(\.\d+)?$")]


class Site(ResponseModel):
    siteId: UUID
    name: str
    payoutWallet: str | None
    createdAt: datetime


class Tariff(ResponseModel):
    tariffId: UUID
    siteId: UUID
    pricePerKwh: DecimalString
    currency: str
    isActive: bool
    createdAt: datetime


class SiteAssignment(ResponseModel):
    chargePointId: str
    siteId: UUID
    assignedAt: datetime


class Settlement(ResponseModel):
    settlementId: UUID
    sessionId: UUID
    chargePointId: str
    siteId: UUID
    amount: DecimalString
    currency: str
    wallet: str | None
    status: SettlementStatus
    chain: str | None
    txHash: str | None
    externalRef: str | None
    error: str | None
    createdAt: datetime
    updatedAt: datetime
