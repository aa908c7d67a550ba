"""Pricing a charging session by an OCPI 2.2.1 tariff, in exact decimals.

The session comes as segments (start, end, the energy delivered in it, charging or parked), the
energy spread evenly over each. The engine:
1. splits the segments wherever a restriction of any element may start or stop holding: where the
   site's wall clock reaches a time of day a restriction names or a midnight (dates, days of the
   week), where it jumps (a daylight-saving change), at a session duration, at a kWh total (found
   by interpolation);
2. for each resulting period and each dimension it has (ENERGY; TIME while charging or
   PARKING_TIME while parked), takes the first element that has a price component of that
   dimension and whose restrictions all hold at the period's start (OCPI's rule), and gives that
   component the period's volume; FLAT is charged once, by the first element that has one and
   holds at the session's start;
3. applies step_size per dimension over the whole session: the dimension's total volume is
   rounded up to the step_size of the component that took its last volume, the difference billed
   at that component's price;
4. applies VAT per component, then min_price and max_price to the total.

Readings where OCPI 2.2.1 leaves room (CONTRACT section 9; the reference engine's, where it has one):
- Times of day, dates and days of the week are the site's wall clock (its IANA time zone): a
  restriction holds at a period's start when the local time then satisfies it, so across a
  daylight-saving change an element from 02:30 starts when the clock jumps past 02:30 in spring,
  and a 02:30-03:00 element holds twice on the night the clock goes back.
- A step_size of 0 means no stepping. TIME is stepped only when no PARKING_TIME component billed
  part of the session: parking continues the same clock and PARKING_TIME's own step_size applies.
- min_price and max_price bound both totals, excl. and incl. VAT (OCPI: both apply); a bound
  given without incl_vat carries the session's own VAT ratio.
- min/max_power holds for the period's average power. Chargers report no current here, so
  min/max_current restrictions are not judged (they hold); a reservation restriction never holds
  (a charging session is no reservation).
- A bound is inclusive at its minimum and exclusive at its maximum, as OCPI words each one."""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, tzinfo
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, localcontext

from services.billing.money import minor_unit
from services.billing.ocpi import DAYS, Dimension, OcpiTariff, PriceComponent, Restrictions, TariffElement

WH_PER_KWH = Decimal(1000)
SECONDS_PER_HOUR = Decimal(3600)
UNITS = {"ENERGY": "kWh", "TIME": "h", "PARKING_TIME": "h", "FLAT": "session"}


@dataclass(frozen=True)
class Segment:
    start: datetime
    end: datetime
    energy_wh: Decimal
    charging: bool = True  # False: connected, not charging (PARKING_TIME)

    @property
    def seconds(self) -> Decimal:
        return Decimal((self.end - self.start) // timedelta(microseconds=1)) / Decimal(1_000_000)


@dataclass(frozen=True)
class Line:
    """One entry of a session's cost breakdown: what one price component billed."""

    type: str  # ENERGY, TIME, PARKING_TIME, FLAT, or MIN_PRICE / MAX_PRICE for the adjustment
    volume: Decimal
    unit: str
    amount_excl_vat: Decimal
    vat_percent: Decimal | None
    amount_incl_vat: Decimal


@dataclass
class Priced:
    currency: str
    lines: list[Line] = field(default_factory=list)
    energy_kwh: Decimal = Decimal(0)
    parking_h: Decimal = Decimal(0)

    @property
    def total_excl_vat(self) -> Decimal:
        return sum((line.amount_excl_vat for line in self.lines), Decimal(0))

    @property
    def total_incl_vat(self) -> Decimal:
        return sum((line.amount_incl_vat for line in self.lines), Decimal(0))

    def cost_of(self, *types: str) -> tuple[Decimal, Decimal]:
        lines = [line for line in self.lines if line.type in types]
        return (sum((x.amount_excl_vat for x in lines), Decimal(0)), sum((x.amount_incl_vat for x in lines), Decimal(0)))

    @property
    def cost_amount(self) -> Decimal:
        """The total incl. VAT, rounded half-up to the currency's minor unit: what is settled."""
        return rounded(self.total_incl_vat, self.currency)


def rounded(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-minor_unit(currency)), rounding=ROUND_HALF_UP)


# --- 1. periods ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Period:
    segment: Segment
    energy_before_wh: Decimal  # delivered in the session before this period
    seconds_before: Decimal  # session time before this period

    @property
    def power_kw(self) -> Decimal | None:
        seconds = self.segment.seconds
        return self.segment.energy_wh / WH_PER_KWH / (seconds / SECONDS_PER_HOUR) if seconds > 0 else None


def _wall_clock_cuts(tariff: OcpiTariff, start: datetime, end: datetime, zone: tzinfo) -> set[datetime]:
    """The instants in (start, end) where a restriction on times of day, dates or days of the week
    may start or stop holding: where the site's wall clock reaches a time some restriction names or
    a midnight (both times a wall-clock time occurs on the night the clock goes back), and where
    the clock jumps (a time skipped in spring is reached at the jump)."""
    restricted = [e.restrictions for e in tariff.elements if e.restrictions is not None]
    if not any(r.start_time or r.end_time or r.start_date or r.end_date or r.day_of_week for r in restricted):
        return set()
    times = {time(0, 0)} | {t for r in restricted for t in (r.start, r.end) if t is not None}
    found = set(_clock_changes(zone, start, end))
    day, last = start.astimezone(zone).date() - timedelta(days=1), end.astimezone(zone).date() + timedelta(days=1)
    while day <= last:
        for t in times:
            for fold in (0, 1):
                found.add(datetime(day.year, day.month, day.day, t.hour, t.minute, tzinfo=zone, fold=fold).astimezone(UTC))
        day += timedelta(days=1)
    return {b for b in found if start < b < end}


# No time zone changes its offset twice within this span, so a change is found by comparing its ends.
_SCAN = timedelta(hours=6)
_MICROSECOND = timedelta(microseconds=1)


def _clock_changes(zone: tzinfo, start: datetime, end: datetime) -> Iterator[datetime]:
    """The instants in (start, end] at which the zone's offset from UTC changes (daylight saving)."""
    a = start
    while a < end:
        b = min(a + _SCAN, end)
        if a.astimezone(zone).utcoffset() != b.astimezone(zone).utcoffset():
            before, lo, hi = a.astimezone(zone).utcoffset(), a, b
            while hi - lo > _MICROSECOND:  # the first microsecond of the new offset
                mid = lo + (hi - lo) // 2
                lo, hi = (mid, hi) if mid.astimezone(zone).utcoffset() == before else (lo, mid)
            yield hi
        a = b


def _split(segment: Segment, at: datetime) -> tuple[Segment, Segment]:
    whole = segment.seconds
    first_seconds = Decimal((at - segment.start) // timedelta(microseconds=1)) / Decimal(1_000_000)
    first_energy = segment.energy_wh * first_seconds / whole if whole > 0 else Decimal(0)
    return (Segment(segment.start, at, first_energy, segment.charging),
            Segment(at, segment.end, segment.energy_wh - first_energy, segment.charging))


def periods(tariff: OcpiTariff, segments: Sequence[Segment], zone: tzinfo = UTC) -> list[Period]:
    """The segments split wherever a restriction may start or stop holding, times of day read on
    the wall clock of `zone`."""
    if not segments:
        return []
    session_start = segments[0].start
    cuts = _wall_clock_cuts(tariff, session_start, max(s.end for s in segments), zone)
    for element in tariff.elements:
        r = element.restrictions
        if r is not None:
            cuts.update(session_start + timedelta(seconds=s) for s in (r.min_duration, r.max_duration) if s)
    kwh_marks = sorted({k * WH_PER_KWH for e in tariff.elements if e.restrictions
                        for k in (e.restrictions.min_kwh, e.restrictions.max_kwh) if k})
    result: list[Period] = []
    energy, elapsed = Decimal(0), Decimal(0)
    for segment in segments:
        pieces = [segment]
        for cut in sorted(c for c in cuts if segment.start < c < segment.end):
            head, tail = _split(pieces.pop(), cut)
            pieces += [head, tail]
        for piece in pieces:
            # A kWh mark reached inside the piece: split where the energy crosses it.
            for mark in kwh_marks:
                if energy < mark < energy + piece.energy_wh and piece.seconds > 0:
                    share = (mark - energy) / piece.energy_wh
                    at = piece.start + timedelta(microseconds=int((piece.seconds * share * 1_000_000).to_integral_value()))
                    if piece.start < at < piece.end:
                        head, piece = _split(piece, at)
                        result.append(Period(head, energy, elapsed))
                        energy, elapsed = energy + head.energy_wh, elapsed + head.seconds
            result.append(Period(piece, energy, elapsed))
            energy, elapsed = energy + piece.energy_wh, elapsed + piece.seconds
    return result


# --- 2. which element applies ----------------------------------------------------------------------

def holds(r: Restrictions | None, period: Period, zone: tzinfo = UTC) -> bool:
    """Whether the restrictions hold at the period's start, times of day, dates and days of the
    week read on the wall clock of `zone`."""
    if r is None:
        return True
    start = period.segment.start.astimezone(zone)
    moment = start.time()
    if r.start is not None and r.end is not None and r.end < r.start:  # crosses midnight
        if not (moment >= r.start or moment < r.end):
            return False
    else:
        if r.start is not None and moment < r.start:
            return False
        if r.end is not None and moment >= r.end:
            return False
    if r.start_date is not None and start.date() < r.start_date:
        return False
    if r.end_date is not None and start.date() >= r.end_date:
        return False
    if r.day_of_week is not None and DAYS[start.weekday()] not in r.day_of_week:
        return False
    kwh = period.energy_before_wh / WH_PER_KWH
    if (r.min_kwh is not None and kwh < r.min_kwh) or (r.max_kwh is not None and kwh >= r.max_kwh):
        return False
    seconds = period.seconds_before
    if (r.min_duration is not None and seconds < r.min_duration) or (r.max_duration is not None and seconds >= r.max_duration):
        return False
    if r.min_power is not None or r.max_power is not None:
        power = period.power_kw
        if power is None or (r.min_power is not None and power < r.min_power) or (r.max_power is not None and power >= r.max_power):
            return False
    return r.reservation is None


def applicable(elements: Iterable[TariffElement], dimension: Dimension, period: Period, zone: tzinfo = UTC) -> PriceComponent | None:
    for element in elements:
        component = next((c for c in element.price_components if c.type == dimension), None)
        if component is not None and holds(element.restrictions, period, zone):
            return component
    return None


# --- 3 and 4. volumes, step sizes, VAT, min and max --------------------------------------------------

def _line(component: PriceComponent, dimension: str, volume: Decimal) -> Line:
    excl = volume * component.price
    incl = excl * (1 + component.vat / 100) if component.vat else excl
    return Line(dimension, volume, UNITS[dimension], excl, component.vat, incl)


def price(tariff: OcpiTariff, segments: Sequence[Segment], zone: tzinfo = UTC) -> Priced:
    """The session's cost by the tariff at a site whose wall clock is `zone`: a line per price
    component that billed something."""
    with localcontext() as ctx:
        ctx.prec = 60
        return _price(tariff, segments, zone)


def _price(tariff: OcpiTariff, segments: Sequence[Segment], zone: tzinfo) -> Priced:
    result = Priced(tariff.currency)
    split = periods(tariff, segments, zone)
    # (dimension, component) -> volume in the step's unit (Wh or seconds), in the order first met
    volumes: dict[tuple[str, PriceComponent], Decimal] = {}
    last: dict[str, PriceComponent] = {}
    for period in split:
        s = period.segment
        for dimension, amount in (("ENERGY", s.energy_wh), ("TIME" if s.charging else "PARKING_TIME", s.seconds)):
            if amount <= 0:
                continue
            component = applicable(tariff.elements, dimension, period, zone)
            if component is not None:
                volumes[(dimension, component)] = volumes.get((dimension, component), Decimal(0)) + amount
                last[dimension] = component
        result.energy_kwh += s.energy_wh / WH_PER_KWH
        if not s.charging:
            result.parking_h += s.seconds / SECONDS_PER_HOUR
    parking_billed = "PARKING_TIME" in last
    for dimension, component in last.items():  # the step of the last component, over the whole dimension
        if component.step_size == 0 or (dimension == "TIME" and parking_billed):
            continue
        total = sum((v for (d, _), v in volumes.items() if d == dimension), Decimal(0))
        stepped = (total / component.step_size).to_integral_value(rounding=ROUND_CEILING) * component.step_size
        volumes[(dimension, component)] += stepped - total
    for (dimension, component), volume in volumes.items():
        per = WH_PER_KWH if dimension == "ENERGY" else SECONDS_PER_HOUR
        result.lines.append(_line(component, dimension, volume / per))
    if split:
        flat = applicable(tariff.elements, "FLAT", split[0], zone)
        if flat is not None:
            result.lines.append(_line(flat, "FLAT", Decimal(1)))
    _clamp(tariff, result)
    return result


def _clamp(tariff: OcpiTariff, result: Priced) -> None:
    """min_price, then max_price: each bounds the total excl. VAT and the total incl. VAT, and what
    it changes is a line of its own."""
    for kind, bound, side in (("MIN_PRICE", tariff.min_price, max), ("MAX_PRICE", tariff.max_price, min)):
        if bound is None:
            continue
        excl, incl = result.total_excl_vat, result.total_incl_vat
        if bound.incl_vat is not None:
            bound_incl = bound.incl_vat
        else:
            bound_incl = bound.excl_vat * incl / excl if excl else bound.excl_vat
        bounded_excl, bounded_incl = side(excl, bound.excl_vat), side(incl, bound_incl)
        if (bounded_excl, bounded_incl) != (excl, incl):
            result.lines.append(Line(kind, Decimal(1), "session", bounded_excl - excl, None, bounded_incl - incl))
