"""The OCPI 2.2.1 pricing engine on its own: the specification's kinds of tariff (simple, complex,
free of charge, first hour of energy free, max duration, max power, parking, step size), each
total worked out by hand in the test, and properties that must hold for any session."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.billing.money import session_cost
from services.billing.ocpi import OcpiTariff
from services.billing.tariff_engine import Segment, price

D = Decimal
MONDAY = datetime(2026, 11, 30, tzinfo=UTC)  # a Monday


def tariff(*elements: dict, currency: str = "EUR", **extra) -> OcpiTariff:
    return OcpiTariff.model_validate({"currency": currency, "elements": list(elements), **extra})


def component(type_: str, price_: str, step: int = 1, vat: str | None = None) -> dict:
    return {"type": type_, "price": price_, "step_size": step, **({"vat": vat} if vat is not None else {})}


def charge(start: datetime, minutes: float, kwh: str, *, charging: bool = True) -> Segment:
    return Segment(start, start + timedelta(minutes=minutes), D(kwh) * 1000, charging)


def totals(result) -> tuple[Decimal, Decimal]:
    return result.total_excl_vat.normalize(), result.total_incl_vat.normalize()


def test_simple_tariff_0_25_euro_per_kwh_with_vat():
    simple = tariff({"price_components": [component("ENERGY", "0.25", vat="10.0")]}, type="REGULAR",
                    country_code="DE", party_id="ALL", id="12", last_updated="2018-12-17T11:36:01Z")
    result = price(simple, [charge(MONDAY.replace(hour=10), 60, "11.5")])
    # 11.5 kWh x 0.25 = 2.875 excl. VAT; x 1.10 = 3.1625 incl.; settled 3.16
    assert totals(result) == (D("2.875"), D("3.1625")) and result.cost_amount == D("3.16")
    assert simple.only_price_per_kwh() is None  # it has VAT: more than a per-kWh price


def test_complex_tariff_start_fee_charging_time_and_parking_by_time_of_day():
    complex_ = tariff(
        {"price_components": [component("FLAT", "2.50", vat="15.0")]},
        {"price_components": [component("TIME", "1.00", 900, "20.0")], "restrictions": {"max_current": "32.00"}},
        {"price_components": [component("TIME", "2.00", 600, "20.0")],
         "restrictions": {"min_current": "32.00", "day_of_week": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"]}},
        {"price_components": [component("PARKING_TIME", "5.00", 300, "10.0")],
         "restrictions": {"start_time": "09:00", "end_time": "18:00", "day_of_week": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"]}},
        {"price_components": [component("PARKING_TIME", "6.00", 300, "10.0")],
         "restrictions": {"start_time": "10:00", "end_time": "17:00", "day_of_week": ["SATURDAY"]}},
    )
    # Monday 17:00: charges 40 min, then stays parked 1 h 22 min (until 19:02; parking is billed until 18:00).
    start = MONDAY.replace(hour=17)
    result = price(complex_, [charge(start, 40, "20"), charge(start + timedelta(minutes=40), 82, "0", charging=False)])
    lines = {line.type: line for line in result.lines}
    # FLAT 2.50 (+15% = 2.875); TIME: current is not reported, so the first TIME element applies:
    # 40 min = 2/3 h x 1.00 = 0.6667 (+20% = 0.80), not stepped: a PARKING_TIME component billed
    # parking, which continues the same clock (CONTRACT section 9, the reference engine's reading);
    # PARKING 17:40-18:00 = 20 min (a multiple of 300 s) x 5.00/h = 1.6666...; after 18:00 no element applies.
    assert (lines["FLAT"].amount_excl_vat, lines["FLAT"].amount_incl_vat) == (D("2.50"), D("2.875"))
    assert lines["TIME"].volume * 3 == 2 or abs(lines["TIME"].volume - D(2) / 3) < D("1e-30")
    assert rounded_total(result) == (D("4.83"), D("5.51"))  # 2.50 + 0.6667 + 1.6667; 2.875 + 0.80 + 1.8333
    parking = lines["PARKING_TIME"]
    assert parking.volume * 3 == 1 or abs(parking.volume - D(1) / 3) < D("1e-30")
    assert result.cost_amount == D("5.51")
    # Unplugged at 17:40 instead: no parking, so TIME is stepped: 40 min to 45 min (900 s) = 0.75 x 1.00 (+20% = 0.90).
    unplugged = price(complex_, [charge(start, 40, "20")])
    lines = {line.type: line for line in unplugged.lines}
    assert (lines["TIME"].volume, lines["TIME"].amount_excl_vat, lines["TIME"].amount_incl_vat) == (D("0.75"), D("0.75"), D("0.900"))
    assert rounded_total(unplugged) == (D("3.25"), D("3.78"))  # 2.50 + 0.75; 2.875 + 0.90


def minutes_of(hours: Decimal) -> Decimal:
    return exact(hours * 60)


def exact(value: Decimal) -> Decimal:
    """Equal to 12 places (the engine divides at 60 digits; a third of an hour has no end)."""
    return value.quantize(D("1e-12")).normalize()


def rounded_total(result) -> tuple[Decimal, Decimal]:
    return result.total_excl_vat.quantize(D("0.01")), result.total_incl_vat.quantize(D("0.01"))


def test_free_of_charge():
    free = tariff({"price_components": [component("ENERGY", "0.00")]})
    result = price(free, [charge(MONDAY, 90, "30")])
    assert totals(result) == (D(0), D(0)) and result.cost_amount == D("0.00")


def test_first_hour_of_energy_free():
    first_hour_free = tariff(
        {"price_components": [component("ENERGY", "0.00")], "restrictions": {"max_duration": 3600}},
        {"price_components": [component("ENERGY", "0.20")]},
    )
    # 2 h at an even 11 kW: 11 kWh in the first hour free, 11 kWh in the second at 0.20 = 2.20
    result = price(first_hour_free, [charge(MONDAY.replace(hour=8), 120, "22")])
    assert totals(result) == (D("2.2"), D("2.2"))


def test_max_duration_price_changes_after_30_minutes():
    by_duration = tariff(
        {"price_components": [component("ENERGY", "0.30")], "restrictions": {"max_duration": 1800}},
        {"price_components": [component("ENERGY", "0.40")], "restrictions": {"min_duration": 1800}},
    )
    # 45 min, 9 kWh evenly: 6 kWh in the first 30 min x 0.30 = 1.80, 3 kWh after x 0.40 = 1.20
    result = price(by_duration, [charge(MONDAY, 45, "9")])
    assert totals(result) == (D("3.0"), D("3.0"))


def test_max_power_a_slow_charge_pays_less():
    by_power = tariff(
        {"price_components": [component("ENERGY", "0.20")], "restrictions": {"max_power": "16.00"}},
        {"price_components": [component("ENERGY", "0.35")]},
    )
    slow = price(by_power, [charge(MONDAY, 60, "11")])  # 11 kW
    fast = price(by_power, [charge(MONDAY, 30, "25")])  # 50 kW
    assert totals(slow) == (D("2.2"), D("2.2")) and totals(fast) == (D("8.75"), D("8.75"))


def test_parking_time_is_billed_while_connected_and_not_charging():
    parking = tariff({"price_components": [component("ENERGY", "0.25"), component("PARKING_TIME", "2.00", 300)]})
    # 10 kWh in an hour, then 70 min parked, stepped to 70 min (a multiple of 5 min) = 7/6 h x 2.00
    result = price(parking, [charge(MONDAY, 60, "10"), charge(MONDAY + timedelta(hours=1), 70, "0", charging=False)])
    assert rounded_total(result) == (D("4.83"), D("4.83"))  # 2.50 + 2.3333


def test_step_size_rounds_up_each_dimension_over_the_whole_session():
    stepped = tariff({"price_components": [component("TIME", "1.20", 300), component("ENERGY", "0.25", 1000)]})
    # 22 min -> 25 min = 5/12 h x 1.20 = 0.50; 7.2 kWh -> 8 kWh (1 kWh steps) x 0.25 = 2.00
    result = price(stepped, [charge(MONDAY, 22, "7.2")])
    assert totals(result) == (D("2.5"), D("2.5"))
    # The step of the last component taking the dimension applies to the whole: two time-of-day
    # energy prices, 5 kWh each, one 1 kWh step at the end (at the second price).
    by_time = tariff(
        {"price_components": [component("ENERGY", "0.10", 1000)], "restrictions": {"start_time": "00:00", "end_time": "12:00"}},
        {"price_components": [component("ENERGY", "0.50", 1000)]},
    )
    result = price(by_time, [charge(MONDAY.replace(hour=11), 60, "5.5"), charge(MONDAY.replace(hour=12), 60, "4.8")])
    # 5.5 kWh x 0.10 = 0.55; 4.8 kWh -> 10.3 total stepped to 11: +0.7 at 0.50 -> 5.5 kWh x 0.50 = 2.75
    assert totals(result) == (D("3.3"), D("3.3"))


def test_min_and_max_price_bound_the_total():
    bounded = tariff({"price_components": [component("ENERGY", "0.30")]},
                     min_price={"excl_vat": "1.00", "incl_vat": "1.19"}, max_price={"excl_vat": "10.00"})
    small = price(bounded, [charge(MONDAY, 10, "1")])
    assert totals(small) == (D("1.00"), D("1.19")) and small.lines[-1].type == "MIN_PRICE"
    large = price(bounded, [charge(MONDAY, 120, "100")])
    assert totals(large) == (D("10.00"), D("10.00")) and large.lines[-1].type == "MAX_PRICE"


def test_the_per_kwh_tariff_is_one_energy_element():
    per_kwh = OcpiTariff.per_kwh(D("0.30"), "USD")
    assert per_kwh.only_price_per_kwh() == D("0.30")
    assert price(per_kwh, [charge(MONDAY, 30, "12.345")]).cost_amount == D("3.70")


@pytest.mark.parametrize(("body", "field"), [
    ({"currency": "EUR", "elements": [{"price_components": [component("ENERGY", "-0.10")]}]}, "price"),
    ({"currency": "EUR", "elements": [{"price_components": [component("POWER", "0.10")]}]}, "type"),
    ({"currency": "EUR", "elements": [{"price_components": [component("ENERGY", "0.10", -1)]}]}, "step_size"),
    ({"currency": "EURO", "elements": [{"price_components": [component("ENERGY", "0.10")]}]}, "currency"),
    ({"currency": "EUR", "elements": [{"price_components": [component("ENERGY", "0.10")],
                                       "restrictions": {"min_kwh": "20", "max_kwh": "10"}}]}, "restrictions"),
    ({"currency": "EUR", "elements": [{"price_components": [component("ENERGY", "0.10")],
                                       "restrictions": {"day_of_week": []}}]}, "day_of_week"),
    ({"currency": "EUR", "elements": []}, "elements"),
])
def test_a_bad_tariff_names_the_field(body, field):
    with pytest.raises(pydantic.ValidationError) as refused:
        OcpiTariff.model_validate(body)
    assert any(field in map(str, error["loc"]) for error in refused.value.errors()), refused.value.errors()


# --- the readings where OCPI leaves room (CONTRACT section 9) -------------------------------------

STEP_SIZE_EXAMPLE = tariff(  # OCPI 2.2.1's step_size example tariff (mod_tariffs, "Example Tariff")
    {"price_components": [component("TIME", "1.20", 1800), component("PARKING_TIME", "1.00", 900)],
     "restrictions": {"start_time": "00:00", "end_time": "17:00"}},
    {"price_components": [component("TIME", "2.40", 900), component("PARKING_TIME", "1.00", 900)],
     "restrictions": {"start_time": "17:00", "end_time": "20:00"}},
    {"price_components": [component("TIME", "2.40", 900)], "restrictions": {"start_time": "20:00", "end_time": "00:00"}},
)


def test_time_is_not_stepped_when_parking_follows_the_issues_case():
    """Plugged in at 16:55, charging 10 minutes, then parked 2 minutes, as the issue and the
    reference corpus's `step_size` case have it."""
    start = MONDAY.replace(hour=16, minute=55)
    result = price(STEP_SIZE_EXAMPLE, [charge(start, 10, "0"), charge(start + timedelta(minutes=10), 2, "0", charging=False)])
    lines = sorted((line.type, minutes_of(line.volume), exact(line.amount_excl_vat)) for line in result.lines)
    # TIME 16:55-17:00 = 5 min x 1.20/h = 0.10 and 17:00-17:05 = 5 min x 2.40/h = 0.20, not stepped:
    # a PARKING_TIME component billed parking, which continues the same clock. PARKING_TIME
    # 17:05-17:07 = 2 min, stepped by the step_size of the component that billed it (17:00-20:00:
    # 900 s) to 15 min x 1.00/h = 0.25. Total 0.55 (we billed 0.75 before: TIME stepped to 15 min too).
    assert lines == [("PARKING_TIME", D(15), D("0.25")), ("TIME", D(5), D("0.10")), ("TIME", D(5), D("0.20"))]
    assert totals(result) == (D("0.55"), D("0.55")) and result.cost_amount == D("0.55")


def test_time_is_stepped_when_no_parking_is_billed_as_ocpis_examples_have_it():
    # Example #2: 16:35, 35 min of charging, unplugged at once: 25 min x 1.20 = 0.50; the 35 min are
    # stepped by the last TIME component (900 s) to 45 min: 20 min x 2.40 = 0.80. Total 1.30.
    result = price(STEP_SIZE_EXAMPLE, [charge(MONDAY.replace(hour=16, minute=35), 35, "0")])
    assert totals(result) == (D("1.3"), D("1.3"))
    # Switching to free parking: 19:55, 10 min of charging, then 2 min parked after 20:00, where no
    # PARKING_TIME component applies (nothing billed it), so TIME is stepped: 5 min x 2.40 before
    # 20:00 and 5 min x 2.40 after, stepped to 15 min x 2.40/h = 0.60.
    start = MONDAY.replace(hour=19, minute=55)
    result = price(STEP_SIZE_EXAMPLE, [charge(start, 10, "0"), charge(start + timedelta(minutes=10), 2, "0", charging=False)])
    assert totals(result) == (D("0.6"), D("0.6"))


def test_a_step_size_of_0_means_no_stepping():
    unstepped = tariff({"price_components": [component("ENERGY", "0.25", 0), component("TIME", "1.20", 0), component("FLAT", "1.00", 0)]})
    # 22.5 min, 7200.5 Wh: 7.2005 kWh x 0.25 = 1.800125 and 0.375 h x 1.20 = 0.45, exactly (a step of
    # 1 Wh would bill 7201 Wh), FLAT 1.00 once: 3.250125.
    result = price(unstepped, [Segment(MONDAY, MONDAY + timedelta(minutes=22, seconds=30), D("7200.5"))])
    assert totals(result) == (D("3.250125"), D("3.250125"))


def test_flat_is_charged_once_whatever_the_number_of_periods():
    flat = tariff({"price_components": [component("FLAT", "1.00", 0, vat="0.0")]})
    result = price(flat, [charge(MONDAY + timedelta(minutes=30 * i), 30, "0") for i in range(3)])
    assert totals(result) == (D("1.00"), D("1.00")) and [line.type for line in result.lines] == ["FLAT"]


def test_min_price_and_max_price_bound_the_totals_excl_and_incl_vat_each():
    # 2 kWh x 0.26 = 0.52 excl. VAT, above min_price's 0.50; + 10% = 0.572 incl., below its 0.60:
    # OCPI says both bounds apply, so 0.52 excl. and 0.60 incl.
    both = tariff({"price_components": [component("ENERGY", "0.26", vat="10.0")]}, min_price={"excl_vat": "0.50", "incl_vat": "0.60"})
    result = price(both, [charge(MONDAY, 30, "2")])
    assert totals(result) == (D("0.52"), D("0.6")) and result.lines[-1].type == "MIN_PRICE"
    # A bound without incl_vat carries the session's own VAT: 2 kWh x 0.30 = 0.60 (0.714 incl. 19%)
    # raised to 1.00 excl., 1.19 incl.; 20 kWh = 6.00 (7.14) capped at 5.00 excl., 5.95 incl.
    excl_only = tariff({"price_components": [component("ENERGY", "0.30", vat="19.0")]},
                       min_price={"excl_vat": "1.00"}, max_price={"excl_vat": "5.00"})
    assert totals(price(excl_only, [charge(MONDAY, 30, "2")])) == (D("1.00"), D("1.19"))
    assert totals(price(excl_only, [charge(MONDAY, 30, "20")])) == (D("5.00"), D("5.95"))


# --- times of day on the site's wall clock ---------------------------------------------------------

BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")
PEAK = tariff({"price_components": [component("ENERGY", "0.50")], "restrictions": {"start_time": "08:00", "end_time": "18:00"}},
              {"price_components": [component("ENERGY", "0.20")]})


@pytest.mark.parametrize("start", [
    datetime(2026, 12, 1, 6, 30, tzinfo=UTC),  # 07:30 in Berlin in winter (UTC+1)
    datetime(2026, 7, 1, 5, 30, tzinfo=UTC),  # 07:30 in Berlin in summer (UTC+2)
])
def test_a_peak_from_08_00_starts_at_08_00_berlin_time_in_winter_and_summer(start):
    session = [charge(start, 60, "10")]
    # 07:30-08:00 Berlin: 5 kWh x 0.20 = 1.00; 08:00-08:30: 5 kWh x 0.50 = 2.50
    assert totals(price(PEAK, session, BERLIN)) == (D("3.5"), D("3.5"))
    assert totals(price(PEAK, session)) == (D("2.0"), D("2.0"))  # read in UTC: all before 08:00


def test_spring_forward_an_element_from_02_30_starts_when_the_clock_jumps_past_it():
    """Europe/Berlin, 2026-03-29: at 01:00 UTC the clock jumps from 02:00 CET to 03:00 CEST, so
    02:30 never shows. An element valid from 02:30 to 03:30 holds while the wall clock reads
    02:30-03:30: from the jump (03:00) to 03:30 CEST, that is 01:00-01:30 UTC, half an hour."""
    night = tariff({"price_components": [component("ENERGY", "0.50")], "restrictions": {"start_time": "02:30", "end_time": "03:30"}},
                   {"price_components": [component("ENERGY", "0.20")]})
    # 00:00-02:00 UTC (01:00 CET to 04:00 CEST), 10 kWh an hour, a period crossing the jump.
    session = [Segment(datetime(2026, 3, 29, 0, 0, tzinfo=UTC), datetime(2026, 3, 29, 2, 0, tzinfo=UTC), D(20_000))]
    result = price(night, session, BERLIN)
    # 01:00-01:30 UTC: 5 kWh x 0.50 = 2.50; the other 90 minutes: 15 kWh x 0.20 = 3.00
    assert sorted((line.volume, line.amount_excl_vat) for line in result.lines) == [(D(5), D("2.5")), (D(15), D("3.0"))]
    assert totals(result) == (D("5.5"), D("5.5"))


def test_fall_back_an_element_from_02_30_to_03_00_holds_twice():
    """Europe/Berlin, 2026-10-25: at 01:00 UTC the clock goes back from 03:00 CEST to 02:00 CET, so
    02:30-03:00 shows twice: 00:30-01:00 UTC (CEST) and 01:30-02:00 UTC (CET). The element holds
    whenever the wall clock reads a time it names: both times, an hour of real time in all."""
    night = tariff({"price_components": [component("ENERGY", "0.50")], "restrictions": {"start_time": "02:30", "end_time": "03:00"}},
                   {"price_components": [component("ENERGY", "0.20")]})
    # 00:00-02:00 UTC (02:00 CEST to 03:00 CET), 10 kWh an hour, a period crossing the change.
    session = [Segment(datetime(2026, 10, 25, 0, 0, tzinfo=UTC), datetime(2026, 10, 25, 2, 0, tzinfo=UTC), D(20_000))]
    result = price(night, session, BERLIN)
    # 00:30-01:00 and 01:30-02:00 UTC: 10 kWh x 0.50 = 5.00; 00:00-00:30 and 01:00-01:30: 10 kWh x 0.20 = 2.00
    assert sorted((line.volume, line.amount_excl_vat) for line in result.lines) == [(D(10), D("2.0")), (D(10), D("5.0"))]
    assert totals(result) == (D("7.0"), D("7.0"))
    assert totals(price(night, session)) == (D("4.0"), D("4.0"))  # read in UTC: 02:30 is after the session


def test_days_of_the_week_and_dates_are_the_sites_too():
    """Monday 2026-11-30 03:00 UTC is still Sunday 22:00 in New York (UTC-5)."""
    sundays = tariff({"price_components": [component("ENERGY", "0.10")], "restrictions": {"day_of_week": ["SUNDAY"]}},
                     {"price_components": [component("ENERGY", "0.40")], "restrictions": {"start_date": "2026-11-30"}},
                     {"price_components": [component("ENERGY", "0.30")]})
    late_sunday = [charge(datetime(2026, 11, 30, 3, 0, tzinfo=UTC), 60, "10")]
    assert totals(price(sundays, late_sunday, NEW_YORK)) == (D("1.0"), D("1.0"))  # Sunday's price
    assert totals(price(sundays, late_sunday)) == (D("4.0"), D("4.0"))  # in UTC: Monday 2026-11-30
    # Tuesday 01:00-03:00 UTC is Monday 20:00-22:00 in New York: from 2026-11-30 on, 0.40.
    monday_evening = [charge(datetime(2026, 12, 1, 1, 0, tzinfo=UTC), 120, "10")]
    assert totals(price(sundays, monday_evening, NEW_YORK)) == (D("4.0"), D("4.0"))


def wall_clock_oracle(t: OcpiTariff, start: datetime, minutes: int, wh_per_minute: int, zone: ZoneInfo) -> Decimal:
    """Minute by minute: the first ENERGY element whose times of day hold when the wall clock of
    `zone` shows the minute's start (restrictions and clock changes fall on whole minutes)."""
    total = Decimal(0)
    for i in range(minutes):
        wall = (start + timedelta(minutes=i)).astimezone(zone).time()
        for element in t.elements:
            r = element.restrictions
            if r is None or (r.start <= wall < r.end if r.start < r.end else (wall >= r.start or wall < r.end)):
                total += element.price_components[0].price * wh_per_minute / 1000
                break
    return total


wall_times = st.times().map(lambda t: t.replace(second=0, microsecond=0))


@given(st.sampled_from([datetime(2026, 3, 28, 20, 0, tzinfo=UTC), datetime(2026, 10, 24, 20, 0, tzinfo=UTC)]),
       st.integers(min_value=0, max_value=600), st.integers(min_value=1, max_value=600), wall_times, wall_times, wall_times, wall_times,
       st.integers(min_value=1, max_value=500))
@settings(max_examples=300, deadline=None)
def test_on_daylight_saving_nights_the_engine_agrees_with_the_wall_clock_minute_by_minute(
        night, offset, minutes, a_start, a_end, b_start, b_end, wh_per_minute):
    """Two time-of-day elements anywhere on the clock and a fallback, sessions around the nights
    Berlin's clock changes: priced exactly as a minute-by-minute reading of the wall clock."""
    elements = [{"price_components": [component("ENERGY", p)], "restrictions": {"start_time": f"{s:%H:%M}", "end_time": f"{e:%H:%M}"}}
                for p, s, e in (("0.50", a_start, a_end), ("0.35", b_start, b_end)) if s != e]
    t = tariff(*elements, {"price_components": [component("ENERGY", "0.20")]})
    start = night + timedelta(minutes=offset)
    result = price(t, [Segment(start, start + timedelta(minutes=minutes), D(wh_per_minute * minutes))], BERLIN)
    assert result.total_excl_vat == wall_clock_oracle(t, start, minutes, wh_per_minute, BERLIN)


# --- properties ----------------------------------------------------------------------------------

prices = st.decimals(min_value=0, max_value=5, places=2)
energies = st.decimals(min_value=0, max_value=80, places=3)
minutes = st.integers(min_value=1, max_value=600)
hours = st.integers(min_value=0, max_value=23)


def time_of_day(price_day: Decimal, price_night: Decimal) -> OcpiTariff:
    return tariff(
        {"price_components": [component("ENERGY", str(price_day)), component("TIME", "0.60")],
         "restrictions": {"start_time": "07:00", "end_time": "22:00"}},
        {"price_components": [component("ENERGY", str(price_night)), component("PARKING_TIME", "1.50")]},
    )


@given(prices, prices, st.integers(min_value=0, max_value=1000), st.integers(min_value=2, max_value=600), hours, st.data())
@settings(max_examples=200, deadline=None)
def test_splitting_a_period_in_two_never_changes_the_total_without_steps(day, night, wh_per_minute, length, hour, data):
    """Cut anywhere (at a whole minute, so both halves hold exact energies, as samples do)."""
    cut = data.draw(st.integers(min_value=1, max_value=length - 1))
    start = MONDAY.replace(hour=hour)
    at = start + timedelta(minutes=cut)
    whole = Segment(start, start + timedelta(minutes=length), D(wh_per_minute * length))
    halves = [Segment(start, at, D(wh_per_minute * cut)), Segment(at, whole.end, D(wh_per_minute * (length - cut)))]
    t = time_of_day(day, night)
    assert price(t, [whole]).total_incl_vat == price(t, halves).total_incl_vat


@given(prices, energies, minutes, st.integers(min_value=0, max_value=600), st.integers(min_value=1, max_value=120))
@settings(max_examples=200, deadline=None)
def test_a_longer_parking_time_never_lowers_the_price(day, kwh, length, parked, more):
    t = time_of_day(day, day)
    start = MONDAY.replace(hour=20)

    def total(parking_minutes: int) -> Decimal:
        segments = [charge(start, length, str(kwh))]
        if parking_minutes:
            segments.append(charge(segments[0].end, parking_minutes, "0", charging=False))
        return price(t, segments).total_incl_vat

    assert total(parked + more) >= total(parked)


@given(prices, energies, minutes, st.decimals(min_value=0, max_value=20, places=2), st.decimals(min_value=0, max_value=20, places=2))
@settings(max_examples=200, deadline=None)
def test_the_total_is_never_below_min_price_nor_above_max_price(day, kwh, length, low, span):
    t = tariff({"price_components": [component("ENERGY", str(day)), component("FLAT", "0.50")]},
               min_price={"excl_vat": str(low)}, max_price={"excl_vat": str(low + span + D("0.01"))})
    result = price(t, [charge(MONDAY, length, str(kwh))])
    assert low <= result.total_excl_vat <= low + span + D("0.01")


@given(st.decimals(min_value=D("0.0001"), max_value=100, places=4), st.integers(min_value=0, max_value=10**7), minutes,
       st.sampled_from(["USD", "EUR", "JPY", "KWD"]))
@settings(max_examples=300, deadline=None)
def test_the_per_kwh_tariff_gives_exactly_todays_amounts(price_per_kwh, energy_wh, length, currency):
    segment = Segment(MONDAY, MONDAY + timedelta(minutes=length), Decimal(energy_wh))
    assert price(OcpiTariff.per_kwh(price_per_kwh, currency), [segment]).cost_amount == session_cost(
        Decimal(energy_wh), price_per_kwh, currency)
