"""Response shapes that more than one service answers with: a decimal written as a string, and a
line of a cost breakdown (a session's, billing's quote of a CDR)."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from shared.openapi import ResponseModel

DecimalString = Annotated[str, Field(pattern=r"^-?\d+(\.\d+)?$")]


class CostLine(ResponseModel):
    """What one price component of the tariff billed (OCPI dimensions; MIN_PRICE / MAX_PRICE for
    the adjustment to the tariff's bounds)."""

    type: Literal["ENERGY", "TIME", "PARKING_TIME", "FLAT", "MIN_PRICE", "MAX_PRICE"]
    volume: DecimalString
    unit: str
    amountExclVat: DecimalString
    vatPercent: DecimalString | None
    amountInclVat: DecimalString
