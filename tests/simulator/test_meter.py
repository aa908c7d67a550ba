"""The simulated meter's arithmetic: a session delivers its energy to the Wh and never more, the
register only grows, and a charging limit lowers the power the car draws."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.simulator.meter import Charge, drawn_power, limit_in_watts, watts_in


def test_a_session_delivers_its_energy_exactly_at_eleven_kilowatts():
    charge = Charge(start_wh=123_456, target_wh=10_000, speed=360)
    gains = []
    while not charge.done:
        gains.append(charge.run(11_000, 2.0))  # 2 s at 11 kW, 360 times faster: 2200 Wh
    assert gains == [2200, 2200, 2200, 2200, 1200]
    assert (charge.delivered_wh, charge.register_wh) == (10_000, 133_456)
    assert charge.run(11_000, 2.0) == 0 and charge.register_wh == 133_456  # a full car takes nothing more


def test_fractions_of_a_wh_add_up_instead_of_being_lost():
    charge = Charge(start_wh=0, target_wh=100, speed=1)
    gains = [charge.run(300, 1.0) for _ in range(24)]  # 1/12 Wh a second
    assert sum(gains) == 2 and charge.register_wh == 2 and set(gains) == {0, 1}


def test_no_power_no_energy():
    charge = Charge(start_wh=50, target_wh=1_000, speed=360)
    assert charge.run(0, 10.0) == 0 and charge.run(-5, 10.0) == 0 and charge.register_wh == 50 and not charge.done


@given(st.integers(0, 10**9), st.integers(1, 200_000), st.floats(1, 1000),
       st.lists(st.tuples(st.floats(0, 350_000), st.floats(0, 60)), max_size=40))
def test_the_register_only_grows_and_never_passes_the_sessions_energy(start, target, speed, steps):
    charge = Charge(start_wh=start, target_wh=target, speed=speed)
    seen = [charge.register_wh]
    for power, seconds in steps:
        gained = charge.run(power, seconds)
        assert gained >= 0 and charge.register_wh == seen[-1] + gained
        seen.append(charge.register_wh)
    assert start <= charge.register_wh <= start + target
    assert charge.done == (charge.register_wh == start + target)


def test_a_limit_in_amperes_is_230_volts_a_phase():
    assert limit_in_watts(16, "A") == 16 * 230 * 3
    assert limit_in_watts(16, "A", phases=1) == 3680
    assert limit_in_watts(7400.1, "W") == 7400.1
    with pytest.raises(ValueError):
        limit_in_watts(10, "kW")


def test_watts_in_a_unit_round_down_to_a_tenth():
    assert watts_in("W", 11_000.0) == 11_000.0
    assert watts_in("A", 11_000.0) == 15.9  # 15.942 A on three phases
    assert watts_in("A", 3680.0, phases=1) == 16.0


def test_the_car_draws_the_chargers_maximum_under_the_limit():
    assert drawn_power(11_000, None) == 11_000
    assert drawn_power(11_000, 3_700) == 3_700
    assert drawn_power(11_000, 22_000) == 11_000
    assert drawn_power(11_000, -1) == 0
