"""A priced session's figures as an OCPI 2.2.1 CDR states them (mod_cdrs, the CDR object): its
totals and their costs, and its charging periods with their dimensions and tariff. Quotes answer
the same totals; `session.priced` and the settlement carry them, so a roaming partner's CDR
copies what was settled, to the cent, and nothing is priced twice.

Money as decimal strings rounded half-up to the currency's minor unit (`total_cost.incl_vat` is
the session's cost amount, what the settlement bills); volumes in kWh and hours as decimal
strings of at most 6 places."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any
from uuid import UUID

from services.billing.ocpi import OcpiTariff
from services.billing.tariff_engine import SECONDS_PER_HOUR, WH_PER_KWH, Priced, Segment, periods, rounded
from shared.jsonutil import format_ts


def number(value: Decimal) -> str:
    return format(value.quantize(Decimal("1e-6")).normalize(), "f")


def hours(span: timedelta) -> Decimal:
    return Decimal(span // timedelta(microseconds=1)) / (SECONDS_PER_HOUR * 1_000_000)


def totals(priced: Priced, segments: Sequence[Segment], start: datetime, end: datetime) -> dict:
    """OCPI's CDR totals of a session priced from `segments`. `total_time` is the session's whole
    duration from `start` to `end`, charging and not (OCPI); `total_parking_time` the segments' parked time."""

    def money(excl: Decimal, incl: Decimal) -> dict:
        return {"excl_vat": str(rounded(excl, priced.currency)), "incl_vat": str(rounded(incl, priced.currency))}

    return {
        "currency": priced.currency,
        "total_cost": money(priced.total_excl_vat, priced.total_incl_vat),
        "total_fixed_cost": money(*priced.cost_of("FLAT")),
        "total_energy": number(sum((s.energy_wh for s in segments), Decimal(0)) / WH_PER_KWH),
        "total_energy_cost": money(*priced.cost_of("ENERGY")),
        "total_time": number(hours(end - start)),
        "total_time_cost": money(*priced.cost_of("TIME")),
        "total_parking_time": number(sum((s.seconds for s in segments if not s.charging), Decimal(0)) / SECONDS_PER_HOUR),
        "total_parking_cost": money(*priced.cost_of("PARKING_TIME")),
    }


def charging_periods(tariff: OcpiTariff, tariff_id: UUID, segments: Sequence[Segment], zone: tzinfo = UTC) -> list[dict]:
    """One ChargingPeriod per period the engine priced: a segment of the session split wherever an
    element of the tariff may start or stop applying (OCPI: "the CPO SHALL add a new Charging
    Period" then). ENERGY and TIME while charging, PARKING_TIME while parked; a period ends when
    the next one starts, the last when the session ends."""
    found = []
    for period in periods(tariff, segments, zone):
        s = period.segment
        if s.end <= s.start and s.energy_wh == 0 and len(segments) > 1:
            continue
        span = number(s.seconds / SECONDS_PER_HOUR)
        if s.charging:
            dimensions = [{"type": "ENERGY", "volume": number(s.energy_wh / WH_PER_KWH)}, {"type": "TIME", "volume": span}]
        else:
            dimensions = [{"type": "PARKING_TIME", "volume": span}]
            if s.energy_wh:
                dimensions.insert(0, {"type": "ENERGY", "volume": number(s.energy_wh / WH_PER_KWH)})
        found.append({"start_date_time": format_ts(s.start), "dimensions": dimensions, "tariff_id": str(tariff_id)})
    return found


def place(site: Mapping[str, Any]) -> dict:
    """Where a session was priced, as a CDR's CdrLocation states its Location: the site as it is now
    (a session is priced from its start, so its first price finds the site as it was then)."""
    coordinates = {"latitude": site["latitude"], "longitude": site["longitude"]} if site["latitude"] is not None else None
    return {"id": str(site["site_id"]), "name": site["name"], "address": site["address"], "city": site["city"],
            "postal_code": site["postal_code"], "country": site["country"], "coordinates": coordinates}


def session_figures(tariff: Mapping[str, Any], ocpi: OcpiTariff, segments: Sequence[Segment], priced: Priced,
                    zone: tzinfo = UTC) -> dict:
    """The figures `session.priced` carries for a CDR: totals, charging periods, the tariff (its
    row, and `ocpi` as OCPI writes it), and the session's span (`start_date_time`,
    `end_date_time`: its end after parking)."""
    tariff_id = tariff["tariff_id"]
    start, end = segments[0].start, max(s.end for s in segments)
    return {
        **totals(priced, segments, start, end),
        "start_date_time": format_ts(start),
        "end_date_time": format_ts(end),
        "charging_periods": charging_periods(ocpi, tariff_id, segments, zone),
        "tariff": {**ocpi.model_dump(mode="json", exclude_none=True), "id": str(tariff_id),
                   "last_updated": format_ts(tariff["created_at"])},
    }
