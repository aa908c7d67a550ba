"""The OCPP 1.6 payloads load sharing sends: a SetChargingProfile holding a share in the charger's
charging-rate unit, rounded down to 0.1 (the schema's `multipleOf`), the ClearChargingProfile that
takes it back when the limit is gone, and the GetConfiguration that reads that unit once."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Any

RATE_UNIT_KEY = "ChargingScheduleAllowedChargingRateUnit"
VOLTS_PER_PHASE = 230  # where the connector's own voltage is not known
# One profile per connector and purpose, so each new one replaces the last (0: the charger's default).
PROFILE_ID_BASE = 1_300_000
STACK_LEVEL = 1


@dataclass(frozen=True)
class Wiring:
    """How a limit in A becomes W on a connector: phases times volts (OCPI's maxVoltage is line to neutral)."""

    phases: int = 3
    volts: int = VOLTS_PER_PHASE

    @classmethod
    def of(cls, power_type: str | None, max_voltage: int | None) -> Wiring:
        return cls(phases=1 if power_type in ("AC_1_PHASE", "DC") else 3, volts=max_voltage or VOLTS_PER_PHASE)


def rate_unit_of(response: dict[str, Any] | None) -> str:
    """'W' or 'A' from a GetConfiguration answer: W when the charger takes Power (or does not say)."""
    for entry in (response or {}).get("configurationKey") or []:
        if isinstance(entry, dict) and entry.get("key") == RATE_UNIT_KEY and isinstance(entry.get("value"), str):
            units = {unit.strip() for unit in entry["value"].split(",")}
            return "A" if "Current" in units and "Power" not in units else "W"
    return "W"


def get_rate_unit() -> dict[str, Any]:
    return {"key": [RATE_UNIT_KEY]}


def limit_in(unit: str, watts: int, wiring: Wiring) -> Decimal:
    """`watts` in the charger's unit, rounded down to 0.1, so what the charger may draw is never above the share."""
    value = Decimal(watts) if unit == "W" else Decimal(watts) / (wiring.volts * wiring.phases)
    return max(value, Decimal(0)).quantize(Decimal("0.1"), rounding=ROUND_FLOOR)


def set_charging_profile(*, purpose: str, connector_id: int, transaction_id: int | None, unit: str, limit: Decimal,
                         wiring: Wiring) -> dict[str, Any]:
    """One period from the start of the transaction (TxProfile) or of every transaction (TxDefaultProfile)."""
    period: dict[str, Any] = {"startPeriod": 0, "limit": float(limit)}
    if unit == "A":
        period["numberPhases"] = wiring.phases
    profile: dict[str, Any] = {
        "chargingProfileId": PROFILE_ID_BASE + connector_id, "stackLevel": STACK_LEVEL,
        "chargingProfilePurpose": purpose, "chargingProfileKind": "Relative",
        "chargingSchedule": {"chargingRateUnit": unit, "chargingSchedulePeriod": [period]},
    }
    if transaction_id is not None:
        profile["transactionId"] = transaction_id
    return {"connectorId": connector_id, "csChargingProfiles": profile}


def clear_charging_profile(*, purpose: str, connector_id: int) -> dict[str, Any]:
    """Clears exactly the profile `set_charging_profile` put there: its id, connector, purpose and stack level."""
    return {"id": PROFILE_ID_BASE + connector_id, "connectorId": connector_id, "chargingProfilePurpose": purpose,
            "stackLevel": STACK_LEVEL}
