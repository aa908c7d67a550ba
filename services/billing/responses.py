"""The shapes of the billing service's responses and request bodies, for /openapi.json."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from services.billing.money import price_text
from shared.domain import SettlementStatus
from shared.openapi import ResponseModel
from shared.responses import CostLine, DecimalString


class Coordinates(ResponseModel):
    latitude: str
    longitude: str


class Site(ResponseModel):
    siteId: UUID
    name: str
    timeZone: str  # IANA name: the wall clock its tariffs' times of day are read on
    address: str | None
    city: str | None
    postalCode: str | None
    country: str | None  # ISO 3166-1 alpha-3
    coordinates: Coordinates | None
    publish: bool
    maxPowerKw: DecimalString | None
    payoutWallet: str | None
    createdAt: datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any], **given: Any) -> dict[str, Any]:
        latitude, power = row["latitude"], row["max_power_kw"]
        return super().from_row(
            row, coordinates={"latitude": latitude, "longitude": row["longitude"]} if latitude is not None else None,
            maxPowerKw=format(power.normalize(), "f") if power is not None else None)


class Tariff(ResponseModel):
    tariffId: UUID
    siteId: UUID
    pricePerKwh: DecimalString | None  # null when the tariff is more than a price per kWh
    currency: str
    isActive: bool
    createdAt: datetime
    ocpi: dict[str, Any]  # the tariff as OCPI 2.2.1 writes it (prices as decimal strings)

    @classmethod
    def from_row(cls, row: Mapping[str, Any], **given: Any) -> dict[str, Any]:
        per_kwh = row["price_per_kwh"]
        return super().from_row(row, pricePerKwh=price_text(per_kwh, row["currency"]) if per_kwh is not None else None,
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


class Money(ResponseModel):
    excl_vat: DecimalString
    incl_vat: DecimalString


class Quote(ResponseModel):
    """OCPI 2.2.1 CDR totals for the quoted session (money rounded half-up to the currency's minor
    unit; energy in kWh, times in hours), and what each price component billed."""

    currency: str
    total_cost: Money
    total_fixed_cost: Money
    total_energy: DecimalString
    total_energy_cost: Money
    total_time: DecimalString
    total_time_cost: Money
    total_parking_time: DecimalString
    total_parking_cost: Money
    costBreakdown: list[CostLine]
