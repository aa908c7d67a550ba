"""The cost arithmetic on its own: exact, half-up, in the currency's minor unit."""
from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from services.billing.money import MINOR_UNITS, session_cost, to_minor_units

energies = st.decimals(min_value=0, max_value=10**9, places=3, allow_nan=False, allow_infinity=False)
prices = st.decimals(min_value=Decimal("0.000001"), max_value=1000, places=6, allow_nan=False, allow_infinity=False)


def half_up(value: Fraction, places: int) -> Fraction:
    scaled = value * 10**places
    return Fraction(int(scaled + Fraction(1, 2)), 10**places)  # value >= 0, so floor(x + 1/2) is half-up


@given(energies, prices, st.sampled_from(sorted(MINOR_UNITS)))
def test_cost_equals_the_exact_rational_cost_rounded_half_up(energy, price, currency):
    cost = session_cost(energy, price, currency)
    places = MINOR_UNITS[currency]
    assert -cost.as_tuple().exponent == places
    assert Fraction(cost) == half_up(Fraction(energy) / 1000 * Fraction(price), places)


def test_known_amounts():
    assert str(session_cost(Decimal(12345), Decimal("0.30"), "USD")) == "3.70"
    assert str(session_cost(Decimal(12345), Decimal("25"), "JPY")) == "309"
    assert str(session_cost(Decimal(5), Decimal("1"), "USD")) == "0.01"
    assert to_minor_units(Decimal("3.70"), "USD") == 370 and to_minor_units(Decimal("309"), "JPY") == 309
