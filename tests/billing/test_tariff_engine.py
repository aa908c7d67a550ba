"""The OCPI 2.2.1 pricing engine on its own: the specification's kinds of tariff (simple, complex,
free of charge, first hour of energy free, max duration, max power, parking, step size), each
total worked out by hand in the test, and properties that must hold for any session."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

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
    # 40 min stepped to 45 min (900 s) = 0.75 h x 1.00 = 0.75 (+20% = 0.90);
    # PARKING 17:40-18:00 = 20 min (a multiple of 300 s) x 5.00/h = 1.6666...; after 18:00 no element applies.
    assert (lines["FLAT"].amount_excl_vat, lines["FLAT"].amount_incl_vat) == (D("2.50"), D("2.875"))
    assert (lines["TIME"].volume, lines["TIME"].amount_excl_vat, lines["TIME"].amount_incl_vat) == (D("0.75"), D("0.75"), D("0.900"))
    parking = lines["PARKING_TIME"]
    assert parking.volume * 3 == 1 or abs(parking.volume - D(1) / 3) < D("1e-30")
    assert rounded_total(result) == (D("4.92"), D("5.61"))  # 2.50 + 0.75 + 1.6667; 2.875 + 0.90 + 1.8333
    assert result.cost_amount == D("5.61")


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
    ({"currency": "EUR", "elements": [{"price_components": [component("ENERGY", "0.10", 0)]}]}, "step_size"),
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
