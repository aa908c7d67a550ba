"""The final session does not depend on the order events arrive in, nor on how often each arrives:
one session's events (each at a time of its own) delivered in a random order with random
duplicates end up exactly like the same events delivered in order, and like the energy ladder
computed by hand; also with a boot among them, stamped by the gateway's clock while the charger's
runs off it (a boot may close the session for a while; its end still wins)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ingest import gateway_events as ev
from tests.sessions.flows import applied, comparable, finalized, send, session_when
from tests.support import unique_id

BASE = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def at(minutes: int) -> str:
    return (BASE + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


@st.composite
def scenarios(draw) -> dict:
    meter_start = draw(st.sampled_from([0, draw(st.integers(1, 50_000))]))
    # one register sample a minute: samples sharing a ts are ordered by receipt (tests/sessions/test_receive_order.py)
    registers = draw(st.lists(st.tuples(st.integers(1, 58), st.integers(0, 60_000), st.booleans()), max_size=5,
                              unique_by=lambda t: t[0]))
    # identical events are one event (same derived eventId), so each interval sample gets its own minute
    intervals = draw(st.lists(st.tuples(st.integers(1, 58), st.integers(-50, 5_000)), max_size=4, unique_by=lambda t: t[0]))
    meter_stop = draw(st.one_of(st.none(), st.integers(0, 120_000)))
    # a boot at some minute of the charge, by the gateway's clock: the charger's runs this many seconds off it
    boot = draw(st.one_of(st.none(), st.tuples(st.integers(0, 60), st.sampled_from([-600, -2, 2, 600]))))
    return {"meter_start": meter_start, "registers": registers, "intervals": intervals, "meter_stop": meter_stop,
            "has_start": draw(st.booleans()) or draw(st.booleans()), "boot": boot}


def events_of(cp: str, scenario: dict) -> list[dict]:
    """The session's events in the order the charger would send them."""
    timed = []
    if scenario["has_start"]:
        timed.append((0, ev.started(cp, 1, meter_start=scenario["meter_start"], ts=at(0))))
    for minute, value, in_kwh in scenario["registers"]:
        reading = f"{Decimal(value) / 1000:.3f}" if in_kwh else str(value)
        timed.append((minute, ev.sample(cp, 1, reading, at(minute), unit="kWh" if in_kwh else None)))
    for minute, value in scenario["intervals"]:
        timed.append((minute, ev.sample(cp, 1, str(value), at(minute), measurand="Energy.Active.Import.Interval")))
    timed.append((60, ev.ended(cp, 1, meter_stop=scenario["meter_stop"], ts=at(60))))
    if scenario["boot"] is not None:
        minute, charger_ahead = scenario["boot"]
        gateway_ts = (BASE + timedelta(minutes=minute, seconds=-charger_ahead)).isoformat().replace("+00:00", "Z")
        timed.append((minute, ev.booted(cp, ts=gateway_ts)))
    return [event for _, event in sorted(timed, key=lambda t: t[0])]


def expected_energy(scenario: dict) -> tuple[int | None, str]:
    """CONTRACT section 2, by hand."""
    start = scenario["meter_start"] if scenario["has_start"] else 0
    stop = scenario["meter_stop"] or None  # the gateway omits a zero reading
    if stop is not None and stop >= start:
        return stop - start, "StopTransaction"
    if scenario["registers"]:
        _, last = max((minute, value) for minute, value, _ in scenario["registers"])
        if last >= start:
            return last - start, "MeterValues.Register"
    if scenario["intervals"] and sum(v for _, v in scenario["intervals"]) >= 0:
        return sum(v for _, v in scenario["intervals"]), "MeterValues.Interval"
    return None, "Missing"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(scenario=scenarios(), data=st.data())
async def test_any_order_and_any_duplication_gives_the_in_order_session(api, pg, scenario, data):
    in_order_cp, shuffled_cp = unique_id(), unique_id()
    in_order = events_of(in_order_cp, scenario)
    shuffled = events_of(shuffled_cp, scenario)
    shuffled += data.draw(st.lists(st.sampled_from(shuffled), max_size=len(shuffled)), label="duplicates")
    shuffled = data.draw(st.permutations(shuffled), label="delivery order")

    ids = await send(api, *in_order) + await send(api, *shuffled)
    await applied(pg, ids)
    reference = await session_when(api, in_order_cp, 1, finalized)
    result = await session_when(api, shuffled_cp, 1, finalized)

    assert comparable(result) == comparable(reference)
    assert (result["energyWh"], result["energySource"]) == expected_energy(scenario)
    assert result["isEstimated"] is (result["energySource"] == "Missing")
    assert result["meterStartWh"] == (scenario["meter_start"] if scenario["has_start"] else 0)
    assert result["meterStopWh"] == (scenario["meter_stop"] or None)


async def test_end_before_start_samples_around_it_and_everything_twice(api, pg):
    cp = unique_id()
    start = ev.started(cp, 1, meter_start=1000, ts=at(0))
    samples = [ev.sample(cp, 1, "1500", at(10)), ev.sample(cp, 1, "2500", at(50))]
    end = ev.ended(cp, 1, ts=at(60))
    ids = await send(api, samples[1], end, end, samples[1], start, samples[0], start, samples[0])
    await applied(pg, ids)
    session = await session_when(api, cp, 1, finalized)
    assert (session["energyWh"], session["energySource"]) == (1500, "MeterValues.Register")
    assert (session["startedAt"], session["endedAt"], session["connectorId"]) == (at(0), at(60), 1)
    count = await pg.fetchval("SELECT count(*) FROM sessions.sessions WHERE charge_point_id = $1", cp)
    assert count == 1  # one session, however its events came
