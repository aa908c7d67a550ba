"""`python -m bench.pricing`: how fast billing's engine prices sessions by a 4-element time-of-day
OCPI tariff (day and night energy, charging time by day, parking, a start fee, min and max price),
against the per-kWh tariff, in the same run, on the same sessions: 2 h each, a period every 5 min
(as a charger sampling every 5 min gives), starting round the clock."""
from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from uuid import uuid4

from services.billing.ocpi import OcpiTariff
from services.billing.pricing import cost_of
from services.billing.tariff_engine import Segment
from shared.domain import SessionFinalized

TIME_OF_DAY = OcpiTariff.model_validate({
    "currency": "EUR",
    "elements": [
        {"price_components": [{"type": "FLAT", "price": "0.50", "vat": "21", "step_size": 1}]},
        {"price_components": [{"type": "ENERGY", "price": "0.45", "vat": "21", "step_size": 1},
                              {"type": "TIME", "price": "1.20", "vat": "21", "step_size": 60}],
         "restrictions": {"start_time": "07:00", "end_time": "22:00", "day_of_week": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"]}},
        {"price_components": [{"type": "ENERGY", "price": "0.30", "vat": "21", "step_size": 1}],
         "restrictions": {"start_time": "22:00", "end_time": "07:00"}},
        {"price_components": [{"type": "ENERGY", "price": "0.35", "vat": "21", "step_size": 1},
                              {"type": "PARKING_TIME", "price": "3.00", "vat": "21", "step_size": 300}]},
    ],
    "min_price": {"excl_vat": "1.00"}, "max_price": {"excl_vat": "80.00"},
})
PER_KWH = OcpiTariff.per_kwh(Decimal("0.30"), "EUR")


def sessions(count: int) -> list[SessionFinalized]:
    """Finalized sessions as billing hears of them, with their periods."""
    start = datetime(2026, 11, 30, tzinfo=UTC)
    made = []
    for i in range(count):
        t = start + timedelta(minutes=37 * i)
        segments = []
        for k in range(24):  # 2 h in 5-minute periods; the last half hour parked
            segments.append(Segment(t, t + timedelta(minutes=5), Decimal(900 + (i + k) % 7 * 10), charging=k < 18))
            t += timedelta(minutes=5)
        made.append(SessionFinalized(
            sessionId=uuid4(), chargePointId="CP-BENCH", connectorId=1, transactionId=i, startedAt=segments[0].start,
            endedAt=segments[-1].end, energyWh=sum(s.energy_wh for s in segments), energySource="StopTransaction",
            isEstimated=False, finalizedAt=segments[-1].end, revision=1,
            periods=[{"start": s.start.isoformat(), "end": s.end.isoformat(), "energyWh": str(s.energy_wh), "charging": s.charging}
                     for s in segments]))
    return made


def rate(tariff: OcpiTariff, made: list[SessionFinalized]) -> tuple[float, Decimal]:
    """Sessions priced per second as billing prices them (`pricing.cost_of`: cost and breakdown)."""
    started = time.perf_counter()
    total = sum((cost_of(tariff, session)[0] for session in made), Decimal(0))
    return len(made) / (time.perf_counter() - started), total


def main(count: int) -> dict:
    made = sessions(count)
    per_kwh, per_kwh_total = rate(PER_KWH, made)
    time_of_day, tod_total = rate(TIME_OF_DAY, made)
    return {
        "sessions": count, "periodsPerSession": 24,
        "perKwhSessionsPerSecond": round(per_kwh), "timeOfDaySessionsPerSecond": round(time_of_day),
        "timeOfDayToPerKwh": round(time_of_day / per_kwh, 3),
        "perKwhTotal": str(per_kwh_total), "timeOfDayTotal": str(tod_total),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=2000)
    print(json.dumps(main(parser.parse_args().sessions), indent=1))
