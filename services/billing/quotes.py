"""Quotes: what a tariff charges for a session described as an OCPI 2.2.1 CDR's periods (or as
its start, end and energy), answered as OCPI's CDR totals, so a roaming partner's CDR can be
checked against our price and a driver shown a price before charging. Nothing is stored."""
from __future__ import annotations

from datetime import UTC, timedelta, tzinfo
from decimal import Decimal

from services.billing.models import CdrQuote, SimpleQuote
from services.billing.ocpi import OcpiTariff
from services.billing.pricing import breakdown
from services.billing.tariff_engine import SECONDS_PER_HOUR, Priced, Segment, price, rounded


def segments_of(quote: CdrQuote | SimpleQuote) -> list[Segment]:
    """A CDR period spans until the next one starts (the last until the CDR's end): its TIME
    hours charging first, with its ENERGY, then its PARKING_TIME hours parked; a period with
    neither charges over its whole span."""
    if isinstance(quote, SimpleQuote):
        return [Segment(quote.startedAt, quote.endedAt, quote.energyWh)]
    segments = []
    periods = quote.charging_periods
    for i, period in enumerate(periods):
        end = periods[i + 1].start_date_time if i + 1 < len(periods) else quote.end_date_time
        energy_wh = (period.volume("ENERGY") or Decimal(0)) * 1000
        charging_h, parking_h = period.volume("TIME"), period.volume("PARKING_TIME")
        start = period.start_date_time
        if charging_h is None and parking_h is None:
            segments.append(Segment(start, end, energy_wh))
            continue
        charged_until = start + _hours(charging_h or Decimal(0))
        segments.append(Segment(start, charged_until, energy_wh))
        if parking_h:
            segments.append(Segment(charged_until, charged_until + _hours(parking_h), Decimal(0), charging=False))
    return segments


def _hours(hours: Decimal) -> timedelta:
    return timedelta(microseconds=int((hours * SECONDS_PER_HOUR * 1_000_000).to_integral_value()))


def totals(tariff: OcpiTariff, quote: CdrQuote | SimpleQuote, zone: tzinfo = UTC) -> dict:
    """OCPI's CDR totals, times of day read on the wall clock of `zone`. `total_time` is the
    session's whole duration, charging and not (OCPI), the others what the periods hold."""
    priced = price(tariff, segments_of(quote), zone)
    money = _money(priced)
    if isinstance(quote, SimpleQuote):
        span = quote.endedAt - quote.startedAt
    else:
        span = quote.end_date_time - quote.start_date_time
    return {
        "currency": tariff.currency,
        "total_cost": money(priced.total_excl_vat, priced.total_incl_vat),
        "total_fixed_cost": money(*priced.cost_of("FLAT")),
        "total_energy": _number(priced.energy_kwh),
        "total_energy_cost": money(*priced.cost_of("ENERGY")),
        "total_time": _number(Decimal(span // timedelta(microseconds=1)) / (SECONDS_PER_HOUR * 1_000_000)),
        "total_time_cost": money(*priced.cost_of("TIME")),
        "total_parking_time": _number(priced.parking_h),
        "total_parking_cost": money(*priced.cost_of("PARKING_TIME")),
        "costBreakdown": breakdown(priced),
    }


def _money(priced: Priced):
    def money(excl: Decimal, incl: Decimal) -> dict:
        return {"excl_vat": str(rounded(excl, priced.currency)), "incl_vat": str(rounded(incl, priced.currency))}
    return money


def _number(value: Decimal) -> str:
    return format(value.quantize(Decimal("1e-6")).normalize(), "f")
