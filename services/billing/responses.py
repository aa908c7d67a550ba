"""The shapes of the billing service's responses and request bodies, for /openapi.json."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import Field

from services.billing.money import price_text
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

    @classmethod
    def from_row(cls, row: Mapping[str, Any], **given: Any) -> dict[str, Any]:
        return super().from_row(row, pricePerKwh=price_text(row["price_per_kwh"], row["currency"]),
                                isActive=row["active_until"] is None)



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
