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

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> dict[str, Any]:
        return cls.body(
    siteId=row["site_id"], name=row["name"], payoutWallet=row["payout_wallet"], createdAt=row["created_at"]
        )



class Tariff(ResponseModel):
    tariffId: UUID
    siteId: UUID
    pricePerKwh: DecimalString
    currency: str
    isActive: bool
    createdAt: datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> dict[str, Any]:
        return cls.body(
            tariffId=row["tariff_id"], siteId=row["site_id"], pricePerKwh=price_text(row["price_per_kwh"], row["currency"]),
            currency=row["currency"], isActive=row["active_until"] is None, createdAt=row["created_at"],
        )



class SiteAssignment(ResponseModel):
    chargePointId: str
    siteId: UUID
    assignedAt: datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> dict[str, Any]:
        return cls.body(
    chargePointId=row["charge_point_id"], siteId=row["site_id"], assignedAt=row["assigned_at"]
        )



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

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> dict[str, Any]:
        return cls.body(
            settlementId=row["settlement_id"], sessionId=row["session_id"], chargePointId=row["charge_point_id"],
            siteId=row["site_id"], amount=row["amount"], currency=row["currency"], wallet=row["wallet"],
            status=row["status"], chain=row["chain"], txHash=row["tx_hash"], externalRef=row["external_ref"],
            error=row["error"], createdAt=row["created_at"], updatedAt=row["updated_at"],
        )

