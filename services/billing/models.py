"""Request bodies and queries of the billing routes. Prices are read from the JSON text as
decimals (a JSON number never passes through a binary float)."""
from __future__ import annotations

import functools
from collections.abc import Callable
import zoneinfo
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

from pydantic import (
    AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StringConstraints, ValidationInfo,
    field_validator, model_validator,
)

from services.billing.money import MAX_PRICE_DECIMALS, MINOR_UNITS, price_decimals
from shared.countries import ISO_3166_ALPHA_3
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


@functools.cache
def _iana_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _iana_zone(value: str) -> str:
    if value not in _iana_zones():
        raise ValueError("must be an IANA time zone name, such as Europe/Berlin, America/New_York or UTC")
    return value


TimeZone = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_iana_zone)]


def _country(value: str) -> str:
    if value not in ISO_3166_ALPHA_3:
        raise ValueError("must be an ISO 3166-1 alpha-3 country code in capitals, such as DEU, NLD or USA")
    return value


Text45 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=45)]  # OCPI string(45)
Text10 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10)]


def _power_kw(value: Decimal) -> Decimal:
    if not value.is_finite() or value <= 0:
        raise ValueError("must be greater than 0 (kW)")
    if value > 1_000_000:
        raise ValueError("must be at most 1000000 (kW)")
    if price_decimals(value) > 3:
        raise ValueError("at most 3 decimal places (a watt)")
    return value


def _at_most(degrees: int) -> Callable[[str], str]:
    def check(value: str) -> str:
        if abs(Decimal(value)) > degrees:
            raise ValueError(f"must be between -{degrees} and {degrees}")
        return value

    return check


class GeoLocation(BaseModel):
    """Coordinates as OCPI 2.2.1 writes them: decimal strings, 5 to 7 places."""
    model_config = ConfigDict(extra="forbid")
    latitude: Annotated[str, StringConstraints(pattern=r"^-?[0-9]{1,2}\.[0-9]{5,7}$"), AfterValidator(_at_most(90))]
    longitude: Annotated[str, StringConstraints(pattern=r"^-?[0-9]{1,3}\.[0-9]{5,7}$"), AfterValidator(_at_most(180))]


class SiteFields(BaseModel):
    """A site's own fields (`POST /v1/sites` creates, `PUT /v1/sites/{siteId}` replaces them: a field
    left out takes its default). Lengths as OCPI's Location has them."""
    model_config = ConfigDict(extra="forbid")
    name: NonBlank
    timeZone: TimeZone = "UTC"  # the wall clock its tariffs' times of day, dates and weekdays are read on
    address: Text45 | None = None
    city: Text45 | None = None
    postalCode: Text10 | None = None
    country: Annotated[str, AfterValidator(_country)] | None = None
    coordinates: GeoLocation | None = None
    publish: StrictBool = True
    maxPowerKw: Annotated[Price, AfterValidator(_power_kw)] | None = None  # the grid connection (CONTRACT section 13)


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
    timeZone: TimeZone | None = None  # the wall clock of the restrictions; default the tariff's site's

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
    timeZone: TimeZone | None = None  # the wall clock of the restrictions; default the tariff's site's

    @model_validator(mode="after")
    def _ordered(self) -> SimpleQuote:
        if self.endedAt < self.startedAt:
            raise ValueError("endedAt must not be before startedAt")
        return self
