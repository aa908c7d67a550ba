"""A session's charging periods (published with session.finalized, priced by billing): energy
over time from its Register samples, scaled to the ladder's energy; charging or parked from its
connector's statuses."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services.sessions.periods import periods

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
D = Decimal


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_energy_follows_the_register_samples_and_adds_up_to_the_sessions_energy():
    # meter start 1000; 1000 Wh in the first 10 min, 3000 in the next 10, nothing in the last 10
    found = periods(at(0), at(30), D(4000), D(1000), [(at(10), D(2000)), (at(20), D(5000))], [])
    assert [(p.start, p.end, p.energy_wh, p.charging) for p in found] == [
        (at(0), at(10), D(1000), True), (at(10), at(20), D(3000), True), (at(20), at(30), D(0), True)]


def test_the_ladders_energy_wins_and_the_samples_only_say_when():
    found = periods(at(0), at(20), D(3000), D(0), [(at(10), D(1000))], [])  # 1000 by the sample, 3000 by the stop
    assert [p.energy_wh for p in found] == [D(1000), D(2000)]
    scaled = periods(at(0), at(20), D(2000), D(0), [(at(10), D(4000))], [])  # a reading beyond the ladder's energy
    assert [p.energy_wh for p in scaled] == [D(2000), D(0)] and sum(p.energy_wh for p in found) == D(3000)


def test_without_samples_the_energy_is_spread_evenly():
    found = periods(at(0), at(60), D(10000), D(0), [], [])
    assert [(p.start, p.end, p.energy_wh) for p in found] == [(at(0), at(60), D(10000))]


def test_parked_while_suspended_or_finishing_charging_otherwise():
    statuses = [(at(-1), "Preparing"), (at(0), "Charging"), (at(30), "SuspendedEV"), (at(40), "Charging"), (at(50), "Finishing")]
    found = periods(at(0), at(60), D(6000), D(0), [], statuses)
    assert [(p.start, p.end, p.charging) for p in found] == [
        (at(0), at(30), True), (at(30), at(40), False), (at(40), at(50), True), (at(50), at(60), False)]
    assert sum(p.energy_wh for p in found) == D(6000)


def test_a_session_without_length_is_one_period():
    assert [(p.start, p.end, p.energy_wh) for p in periods(at(5), at(5), D(700), D(0), [], [])] == [(at(5), at(5), D(700))]


def test_after_the_end_the_car_is_parked_until_it_leaves():
    found = periods(at(0), at(30), D(3000), D(0), [], [(at(0), "Charging"), (at(30), "Finishing")], parked_until=at(45))
    assert [(p.start, p.end, p.energy_wh, p.charging) for p in found] == [
        (at(0), at(30), D(3000), True), (at(30), at(45), D(0), False)]
