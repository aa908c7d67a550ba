"""OCPI 2.2.1 Tariff objects as OCPI writes them (snake_case fields, prices excl. VAT), validated:
a price below 0, an unknown component type, a negative step_size, a currency that is not ISO 4217,
or restrictions that can never hold are refused with the field named (a step_size of 0, common in
real tariffs, means no stepping). The per-kWh tariff of CONTRACT section 4 is the tariff of one
ENERGY element."""
from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from services.billing.money import MAX_PRICE_DECIMALS, MINOR_UNITS, price_decimals

Dimension = Literal["ENERGY", "FLAT", "PARKING_TIME", "TIME"]
DayOfWeek = Literal["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]
DAYS: tuple[DayOfWeek, ...] = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
NonNegative = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]


def _price(value: Decimal) -> Decimal:
    if price_decimals(value) > MAX_PRICE_DECIMALS:
        raise ValueError(f"at most {MAX_PRICE_DECIMALS} decimal places")
    return value


class _Ocpi(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PriceComponent(_Ocpi):
    type: Dimension
    price: NonNegative  # per kWh (ENERGY), per hour (TIME, PARKING_TIME), per session (FLAT); excl. VAT
    vat: Annotated[Decimal, Field(ge=0, le=100, allow_inf_nan=False)] | None = None
    # Wh (ENERGY), seconds (TIME, PARKING_TIME), no unit (FLAT); 0: no stepping
    step_size: Annotated[int, Field(ge=0)]

    @field_validator("price")
    @classmethod
    def _digits(cls, value: Decimal) -> Decimal:
        return _price(value)


class Restrictions(_Ocpi):
    start_time: Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")] | None = None
    end_time: Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")] | None = None
    start_date: date | None = None
    end_date: date | None = None
    min_kwh: NonNegative | None = None
    max_kwh: NonNegative | None = None
    min_current: NonNegative | None = None
    max_current: NonNegative | None = None
    min_power: NonNegative | None = None
    max_power: NonNegative | None = None
    min_duration: Annotated[int, Field(ge=0)] | None = None
    max_duration: Annotated[int, Field(ge=0)] | None = None
    day_of_week: Annotated[list[DayOfWeek], Field(min_length=1, max_length=7)] | None = None
    reservation: Literal["RESERVATION", "RESERVATION_EXPIRES"] | None = None

    @model_validator(mode="after")
    def _can_hold(self) -> Restrictions:
        for low, high in (("min_kwh", "max_kwh"), ("min_current", "max_current"), ("min_power", "max_power"),
                          ("min_duration", "max_duration")):
            a, b = getattr(self, low), getattr(self, high)
            if a is not None and b is not None and a >= b:
                raise ValueError(f"{low} must be below {high}: no period could ever match")
        if self.start_date and self.end_date and self.start_date >= self.end_date:
            raise ValueError("start_date must be before end_date (end_date is excluded): no period could ever match")
        if self.start_time is not None and self.start_time == self.end_time:
            raise ValueError("start_time equals end_time: no period could ever match")
        return self

    @property
    def start(self) -> time | None:
        return time.fromisoformat(self.start_time) if self.start_time else None

    @property
    def end(self) -> time | None:
        return time.fromisoformat(self.end_time) if self.end_time else None


class TariffElement(_Ocpi):
    price_components: Annotated[list[PriceComponent], Field(min_length=1)]
    restrictions: Restrictions | None = None


class Price(_Ocpi):
    excl_vat: NonNegative
    incl_vat: NonNegative | None = None


class OcpiTariff(_Ocpi):
    """An OCPI 2.2.1 Tariff. Its identity and display fields are kept as given; anything else OCPI
    does not define is refused."""

    country_code: Annotated[str, Field(min_length=2, max_length=2)] | None = None
    party_id: Annotated[str, Field(min_length=3, max_length=3)] | None = None
    id: Annotated[str, Field(min_length=1, max_length=36)] | None = None
    tariff_alt_text: Annotated[list[dict], Field(max_length=20)] | None = None
    tariff_alt_url: Annotated[str, Field(max_length=2048)] | None = None
    energy_mix: dict | None = None
    last_updated: AwareDatetime | None = None
    currency: str
    type: Literal["AD_HOC_PAYMENT", "PROFILE_CHEAP", "PROFILE_FAST", "PROFILE_GREEN", "REGULAR"] | None = None
    elements: Annotated[list[TariffElement], Field(min_length=1, max_length=100)]
    min_price: Price | None = None
    max_price: Price | None = None
    start_date_time: AwareDatetime | None = None
    end_date_time: AwareDatetime | None = None

    @field_validator("currency")
    @classmethod
    def _iso_4217(cls, value: str) -> str:
        if value not in MINOR_UNITS:
            raise ValueError("must be an ISO 4217 currency code (e.g. EUR, USD, JPY)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> OcpiTariff:
        if self.min_price and self.max_price and (
                self.min_price.excl_vat > self.max_price.excl_vat
                or None not in (self.min_price.incl_vat, self.max_price.incl_vat) and self.min_price.incl_vat > self.max_price.incl_vat):
            raise ValueError("min_price must not be above max_price")
        if self.start_date_time and self.end_date_time and self.start_date_time >= self.end_date_time:
            raise ValueError("start_date_time must be before end_date_time")
        return self

    @classmethod
    def per_kwh(cls, price: Decimal, currency: str) -> OcpiTariff:
        return cls(currency=currency, elements=[TariffElement(price_components=[
            PriceComponent(type="ENERGY", price=price, step_size=1)])])

    def only_price_per_kwh(self) -> Decimal | None:
        """The price per kWh when the tariff is nothing more than that (CONTRACT: `pricePerKwh`)."""
        if len(self.elements) != 1 or self.min_price or self.max_price:
            return None
        [element] = self.elements
        if element.restrictions is not None or len(element.price_components) != 1:
            return None
        [component] = element.price_components
        if component.type != "ENERGY" or component.step_size != 1 or component.vat:
            return None
        return component.price

    def in_force(self, at: datetime) -> bool:
        return (self.start_date_time is None or self.start_date_time <= at) and (self.end_date_time is None or at < self.end_date_time)
