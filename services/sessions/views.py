"""What a session shows operators: its connector, energy on the wire, who closed it, the starts
that conflict with it, and, once money has moved, the figures billing billed."""
from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from shared.domain import MONEY_HAS_MOVED


def connector_of(row: Mapping[str, Any]) -> int | None:
    return row["connector_id"] if row["connector_id"] is not None else row["connector_hint"]


def realtime_authorized(row: Mapping[str, Any]) -> bool | None:
    """Of a partner's session: whether the partner was asked in real time to authorize its token."""
    return row["realtime_asked_at"] is not None if row["partner_token"] is not None else None


def energy_json(value: Decimal | None) -> int | float | None:
    """energyWh on the wire: an int when whole, else a float rounded to 3 decimals."""
    if value is None:
        return None
    if value == value.to_integral_value():
        return int(value)
    return float(round(value, 3))


def billed(row: Mapping[str, Any]) -> bool:
    """Money has moved: billing says so, and the session shows what was billed."""
    return row["settlement_status"] in MONEY_HAS_MOVED and row["billed_energy_wh"] is not None


def conflicts(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Starts of this transaction id on another connector than the session's, oldest first."""
    others = [s for s in row["starts"].values() if s.get("connectorId") != row["connector_id"]]
    return sorted(others, key=lambda s: (s["startedAt"], s.get("receiveOrder", 0)))


def closed_by(row: Mapping[str, Any]) -> str | None:
    """Who ended the session: the charger's own end always wins, else the rule or the operator that closed it."""
    if row["ended_at"] is not None:
        return "Charger"
    if row["closed_at"] is None:
        return None
    return row["closed_rule"] or "Operator"
