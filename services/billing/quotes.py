"""Quotes: what a tariff charges for a session described as an OCPI 2.2.1 CDR's periods (or as
its start, end and energy), answered as OCPI's CDR totals, so a roaming partner's CDR can be
checked against our price and a driver shown a price before charging. Nothing is stored."""
from __future__ import annotations

from datetime import UTC, timedelta, tzinfo
from decimal import Decimal

from services.billing.models import CdrQuote, SimpleQuote
from services.billing.ocpi import OcpiTariff
from services.billing.pricing import breakdown
from services.billing import cdr_figures
from services.billing.tariff_engine import SECONDS_PER_HOUR, Segment, price


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
    """OCPI's CDR totals (services/billing/cdr_figures.py), times of day read on the wall clock of `zone`."""
    segments = segments_of(quote)
    priced = price(tariff, segments, zone)
    if isinstance(quote, SimpleQuote):
        start, end = quote.startedAt, quote.endedAt
    else:
        start, end = quote.start_date_time, quote.end_date_time
    return {**cdr_figures.totals(priced, segments, start, end), "costBreakdown": breakdown(priced)}
