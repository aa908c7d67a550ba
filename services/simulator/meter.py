"""A simulated charger's meter: the power it may draw under a charging limit, and the energy a
session delivers, in whole Wh on a register that only grows.

Time runs faster for the energy than on the clock (`speed`), so that a 10 kWh session fits in a
demo: at speed 360 one second of charging delivers what six minutes at that power would."""
from __future__ import annotations

import math
from dataclasses import dataclass

VOLTS_PER_PHASE = 230  # to turn a limit in A into W
DEFAULT_PHASES = 3


def limit_in_watts(limit: float, unit: str, phases: int | None = None) -> float:
    """A charging schedule's limit in W: as given for unit W, times 230 V per phase for unit A."""
    if unit == "W":
        return limit
    if unit == "A":
        return limit * VOLTS_PER_PHASE * (phases or DEFAULT_PHASES)
    raise ValueError(f"not a charging rate unit of OCPP 1.6: {unit}")


def watts_in(unit: str, watts: float, phases: int | None = None) -> float:
    """`watts` expressed in a charging rate unit (W, or A on `phases` at 230 V), to 0.1."""
    value = watts if unit == "W" else watts / (VOLTS_PER_PHASE * (phases or DEFAULT_PHASES))
    return math.floor(value * 10) / 10


def drawn_power(max_power_w: float, limit_w: float | None) -> float:
    """What the car draws: the charger's maximum, or the charging limit when that is lower."""
    return max_power_w if limit_w is None else max(min(max_power_w, limit_w), 0.0)


@dataclass
class Charge:
    """One session's energy on a connector's register: it starts at `start_wh` and delivers
    `target_wh`, never more; readings are whole Wh."""

    start_wh: int
    target_wh: int
    speed: float
    _watt_seconds: float = 0.0  # what the power delivered so far; divided by 3600 only when read

    @property
    def delivered_wh(self) -> int:
        # the nano-Wh allowance: 24 steps of 300 W for 1 s are 2 Wh, not 1.9999999999 rounded down
        return min(math.floor(self._watt_seconds / 3600 + 1e-9), self.target_wh)

    @property
    def register_wh(self) -> int:
        return self.start_wh + self.delivered_wh

    @property
    def done(self) -> bool:
        return self.delivered_wh >= self.target_wh

    def run(self, power_w: float, seconds: float) -> int:
        """Charge at `power_w` for `seconds` of the clock; returns the Wh the register gained."""
        before = self.delivered_wh
        self._watt_seconds += max(power_w, 0.0) * seconds * self.speed
        return self.delivered_wh - before
