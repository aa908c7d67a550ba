"""Request bodies and queries of the billing routes. Prices are read from the JSON text as
decimals (a JSON number never passes through a binary float)."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

from pydantic import (
    AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator, model_validator,
)

from services.billing.money import MAX_PRICE_DECIMALS, MINOR_UNITS, price_decimals
from shared.domain import SettlementStatus
from shared.pagination import PageQuery

M = TypeVar("M", bound=BaseModel)

NonBlank = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Token = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^\S+$")]


def _decimal_input(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        raise ValueError("must be a JSON number or a decimal string")
    if isinstance(value, str):
        try:
            value = Decimal(value) if value == value.strip() and value else None
        except InvalidOperation:
            value = None
        if value is None:
            raise ValueError("must be a decimal number such as \"0.30\"")
    return value


Price = Annotated[Decimal, BeforeValidator(_decimal_input)]


class CreateSite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: NonBlank


class CreateTariff(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pricePerKwh: Price
    currency: str | None = None

    @field_validator("pricePerKwh")
    @classmethod
    def _price(cls, value: Decimal, info: ValidationInfo) -> Decimal:
        if not value.is_finite() or value <= 0:
            raise ValueError("must be greater than 0")
        limit = (info.context or {}).get("max_price_per_kwh")
        if limit is not None and value > limit:
            raise ValueError(f"must be at most {limit}")
        if price_decimals(value) > MAX_PRICE_DECIMALS:
            raise ValueError(f"at most {MAX_PRICE_DECIMALS} decimal places")
        exponent = value.as_tuple().exponent
        if exponent > 0 or exponent < -MAX_PRICE_DECIMALS:  # 1E+2 -> 100, 0.30000000 -> 0.300000
            value = value.quantize(Decimal(1).scaleb(-min(MAX_PRICE_DECIMALS, -exponent if exponent < 0 else 0)))
        return value

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        if value is not None and value not in MINOR_UNITS:
            raise ValueError("must be an ISO 4217 currency code in capitals, such as USD, EUR or JPY")
        return value


class SetWallet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    wallet: Token


class AssignSite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    siteId: UUID


class MarkSubmitted(BaseModel):
    """`amount`/`currency`, when given, are what the operator minted: they must be the settlement's."""
    model_config = ConfigDict(extra="forbid")
    chain: Token
    txHash: Token
    externalRef: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    amount: Price | None = None
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None


class MarkFailed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    error: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class SettlementQuery(PageQuery):
    model_config = ConfigDict(extra="forbid")
    status: SettlementStatus | None = None
    siteId: UUID | None = None
    sessionId: UUID | None = None
    chargePointId: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None


class ListQuery(PageQuery):
    model_config = ConfigDict(extra="forbid")


class CdrDimension(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["ENERGY", "TIME", "PARKING_TIME", "MAX_CURRENT", "MIN_CURRENT", "MAX_POWER", "MIN_POWER", "RESERVATION_TIME",
                  "CURRENT", "ENERGY_EXPORT", "ENERGY_IMPORT", "POWER", "STATE_OF_CHARGE"]
    volume: Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]


class ChargingPeriod(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start_date_time: AwareDatetime
    dimensions: Annotated[list[CdrDimension], Field(min_length=1, max_length=20)]
    tariff_id: Annotated[str, Field(max_length=36)] | None = None

    def volume(self, kind: str) -> Decimal | None:
        return next((d.volume for d in self.dimensions if d.type == kind), None)


class CdrQuote(BaseModel):
    """The part of an OCPI 2.2.1 CDR that a price depends on: its span and its charging periods."""

    model_config = ConfigDict(extra="ignore")
    start_date_time: AwareDatetime
    end_date_time: AwareDatetime
    charging_periods: Annotated[list[ChargingPeriod], Field(min_length=1, max_length=10_000)]

    @model_validator(mode="after")
    def _ordered(self) -> CdrQuote:
        if self.end_date_time < self.start_date_time:
            raise ValueError("end_date_time must not be before start_date_time")
        starts = [p.start_date_time for p in self.charging_periods]
        if starts != sorted(starts) or starts[0] < self.start_date_time or starts[-1] > self.end_date_time:
            raise ValueError("charging_periods must start in order, within start_date_time and end_date_time")
        return self


class SimpleQuote(BaseModel):
    """A session as its start, end and energy: one charging period."""

    model_config = ConfigDict(extra="forbid")
    startedAt: AwareDatetime
    endedAt: AwareDatetime
    energyWh: Annotated[Decimal, Field(ge=0, le=10**9, allow_inf_nan=False)]

    @model_validator(mode="after")
    def _ordered(self) -> SimpleQuote:
        if self.endedAt < self.startedAt:
            raise ValueError("endedAt must not be before startedAt")
        return self
