"""A finalized session's charging periods, for pricing by time (CONTRACT section 9): when its
energy flowed and whether the car was charging or parked. Published with `session.finalized`.

- Energy over time comes from the session's Register samples, linear between the start, the
  samples and the end, where the curve reaches the session's `energyWh`: the periods add up to it
  exactly (the ladder decides how much, the samples only when; readings beyond it are scaled
  down to it). Without samples the energy is spread evenly over the session.
- Charging or parked comes from the connector's statuses: Charging is charging; SuspendedEV,
  SuspendedEVSE and Finishing are parked (connected, not charging); any other or none known
  counts as charging.
- The session spans its start to its end (a session closed without an end: to its last event),
  then, once the car has left, the time it stayed parked after its end: until its connector left
  SuspendedEV, SuspendedEVSE and Finishing (a status that comes later re-finalizes the session)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, localcontext
from uuid import UUID

import asyncpg

from services.sessions import store

PARKED = frozenset({"SuspendedEV", "SuspendedEVSE", "Finishing"})
_MICRO = timedelta(microseconds=1)


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime
    energy_wh: Decimal
    charging: bool

    def body(self) -> dict:
        return {"start": self.start, "end": self.end, "energyWh": str(self.energy_wh), "charging": self.charging}


def _at(curve: Sequence[tuple[datetime, Decimal]], moment: datetime) -> Decimal:
    """The cumulative energy at `moment`, linear between the curve's points."""
    for (t0, e0), (t1, e1) in zip(curve, curve[1:]):
        if t0 <= moment <= t1:
            if t1 == t0:
                return e1
            return e0 + (e1 - e0) * Decimal((moment - t0) // _MICRO) / Decimal((t1 - t0) // _MICRO)
    return curve[-1][1]


def periods(start: datetime, end: datetime, energy_wh: Decimal, meter_start_wh: Decimal,
            registers: Sequence[tuple[datetime, Decimal]], statuses: Sequence[tuple[datetime, str]],
            parked_until: datetime | None = None) -> list[Period]:
    """`registers`: (ts, Wh) readings of the session; `statuses`: (ts, status) of its connector,
    oldest first, including the last one before the start; `parked_until`: when the car left
    after the end (the connector left SuspendedEV, SuspendedEVSE and Finishing), if it has."""
    tail = [Period(end, parked_until, Decimal(0), False)] if parked_until is not None and parked_until > end else []
    if end <= start:
        return [Period(start, start, energy_wh, True), *tail]
    with localcontext() as ctx:
        ctx.prec = 50
        curve = [(start, Decimal(0))]
        for ts, value in registers:
            if start < ts < end:
                curve.append((ts, max(curve[-1][1], value - meter_start_wh)))
        reached = curve[-1][1]
        if reached > energy_wh:  # readings beyond the session's energy: keep their shape, at its scale
            curve = [(ts, e * energy_wh / reached) for ts, e in curve]
        curve.append((end, energy_wh))
        cuts = sorted({ts for ts, _ in curve} | {ts for ts, _ in statuses if start < ts < end} | {start, end})
        result = []
        for a, b in zip(cuts, cuts[1:]):
            if b <= a:
                continue
            energy = energy_wh - _at(curve, a) if b == end else _at(curve, b) - _at(curve, a)
            result.append(Period(a, b, energy, _charging_at(statuses, a)))
        return result + tail


def _charging_at(statuses: Sequence[tuple[datetime, str]], moment: datetime) -> bool:
    current = None
    for ts, status in statuses:
        if ts > moment:
            break
        current = status
    return current not in PARKED


async def periods_of(conn: asyncpg.Connection, rows: Sequence[asyncpg.Record]) -> dict[UUID, list[Period]]:
    """The periods of finalized sessions (those with a start and an energy), by session id."""
    wanted = [r for r in rows if r["started_at"] is not None and r["energy_wh"] is not None]
    if not wanted:
        return {}
    ends = {r["session_id"]: max(r["ended_at"] or r["last_event_at"] or r["started_at"], r["started_at"]) for r in wanted}
    samples = await store.sessions.register_readings(conn, [r["session_id"] for r in wanted])
    statuses = await store.sessions.connector_statuses(conn, [
        (r["session_id"], r["charge_point_id"], r["connector_id"] if r["connector_id"] is not None else r["connector_hint"] or 0,
         r["started_at"], ends[r["session_id"]]) for r in wanted])
    readings: dict[UUID, list[tuple[datetime, Decimal]]] = {}
    for s in samples:
        readings.setdefault(s["session_id"], []).append((s["ts"], s["value_wh"]))
    seen: dict[UUID, list[tuple[datetime, str]]] = {}
    for s in statuses:
        seen.setdefault(s["session_id"], []).append((s["ts"], s["status"]))
    return {
        r["session_id"]: periods(r["started_at"], ends[r["session_id"]], r["energy_wh"], Decimal(r["meter_start_wh"] or 0),
                                 readings.get(r["session_id"], []), seen.get(r["session_id"], []),
                                 r["parked_until"] if r["ended_at"] is not None else None)
        for r in wanted
    }
