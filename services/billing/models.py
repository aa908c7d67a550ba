"""Request bodies and queries of the billing routes. Prices are read from the JSON text as
decimals (a JSON number never passes through a binary float)."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, TypeVar
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, StringConstraints, ValidationInfo, field_validator

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
