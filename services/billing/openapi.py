"""The billing service's operations and response shapes, for /openapi.json."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field

from services.billing.models import (
    AssignSite, CreateSite, CreateTariff, ListQuery, MarkFailed, MarkSubmitted, SetWallet, SettlementQuery,
)
from shared.openapi import Fragment, Operation, ResponseModel, page_of

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
    status: Literal["Pending", "Submitted", "Confirmed", "Failed"]
    chain: str | None
    txHash: str | None
    externalRef: str | None
    error: str | None
    createdAt: datetime
    updatedAt: datetime


_SETTLEMENT = "/v1/settlements/{settlementId}"

FRAGMENT = Fragment("billing", (
    Operation("POST", "/v1/sites", "Create a site", "admin", {201: Site}, body=CreateSite),
    Operation("GET", "/v1/sites", "Sites, newest first", "admin", {200: page_of(Site)}, query=ListQuery),
    Operation("GET", "/v1/sites/{siteId}", "One site", "admin", {200: Site}),
    Operation("POST", "/v1/sites/{siteId}/tariffs", "Set the site's tariff (the previous one is kept as history)", "admin",
              {201: Tariff}, body=CreateTariff),
    Operation("GET", "/v1/sites/{siteId}/tariffs", "The site's tariffs, newest first", "admin",
              {200: page_of(Tariff)}, query=ListQuery),
    Operation("POST", "/v1/sites/{siteId}/wallet", "Set the site's payout wallet", "admin", {200: Site}, body=SetWallet),
    Operation("PUT", "/v1/chargers/{chargePointId}/site", "Assign a charger to a site", "admin",
              {200: SiteAssignment}, body=AssignSite),
    Operation("GET", "/v1/settlements", "Settlements, newest first", "admin", {200: page_of(Settlement)}, query=SettlementQuery),
    Operation("GET", _SETTLEMENT, "One settlement", "admin", {200: Settlement}),
    Operation("POST", f"{_SETTLEMENT}/submitted", "Mark a settlement submitted to a chain", "admin",
              {200: Settlement}, body=MarkSubmitted, errors=(409,)),
    Operation("POST", f"{_SETTLEMENT}/confirmed", "Mark a settlement confirmed", "admin", {200: Settlement}, errors=(409,)),
    Operation("POST", f"{_SETTLEMENT}/failed", "Mark a settlement failed", "admin", {200: Settlement}, body=MarkFailed, errors=(409,)),
), "Sites, tariffs, pricing and settlements")
