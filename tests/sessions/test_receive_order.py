"""CONTRACT section 1's order of one charger's events: by ts, and on equal ts by receive order.
Any number of one charger's events within one second, received by ingest in the charger's order,
then delivered behind ingest in any order and any number of times (the broker redelivers,
competing consumers overtake each other), end in the state of the last one received: its
connector status, its boot data, the ladder's last Register sample. And where the gateway's clock
(boots) meets the charger's (its charge), receive order alone decides whether a boot closes the
session, whichever way and however far the clocks are apart (CONTRACT section 1, "Two clocks")."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ingest import gateway_events as ev
from tests.sessions.flows import comparable, deliver, finalized, received, session_when
from tests.support import unique_id

SECOND = "2026-11-25T10:00:00Z"
STATUSES = ["Available", "Preparing", "Charging", "SuspendedEV", "Finishing"]


@st.composite
def one_second(draw) -> list[tuple[str, str]]:
    """(kind, value) in the order the charger sent them; values repeat, as a charger's resends do."""
    kinds = st.sampled_from(["status", "boot", "sample"])
    values = {"status": st.sampled_from(STATUSES), "boot": st.sampled_from(["6.1.0", "6.1.1", "6.1.2"]),
              "sample": st.sampled_from(["1500", "2500", "3500"])}
    sent = draw(st.lists(kinds.flatmap(lambda k: values[k].map(lambda v: (k, v))), min_size=1, max_size=10))
    return sent + [("status", draw(st.sampled_from(STATUSES)))]


def event(cp: str, kind: str, value: str) -> dict:
    if kind == "status":
        return ev.status(cp, 1, value, ts=SECOND)
    if kind == "boot":
        return ev.booted(cp, ts=SECOND) | {"firmwareVersion": value}
    return ev.sample(cp, 1, value, SECOND)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(sent=one_second(), data=st.data())
async def test_events_of_one_second_end_in_the_state_of_the_last_one_received(api, settings, pg, sent, data):
    cp = unique_id("SECOND")
    published = received(ev.started(cp, 1, meter_start=1000, ts=SECOND), *(event(cp, kind, value) for kind, value in sent),
                         ev.ended(cp, 1, ts="2026-11-25T10:00:59Z"))
    redelivered = data.draw(st.lists(st.sampled_from(published), max_size=len(published)), label="redelivered")
    await deliver(settings, pg, data.draw(st.permutations(published + redelivered), label="delivery order"))

    last = {kind: value for kind, value in sent}
    _, connectors = await api.admin("GET", f"/v1/chargers/{cp}/connectors")
    assert [c["status"] for c in connectors["items"]] == [last["status"]]
    _, charger = await api.admin("GET", f"/v1/chargers/{cp}")
    assert charger["firmwareVersion"] == (last["boot"] if "boot" in last else None)
    session = await session_when(api, cp, 1, finalized)
    if "sample" in last:
        assert (session["energyWh"], session["energySource"]) == (int(last["sample"]) - 1000, "MeterValues.Register")
    else:
        assert session["energySource"] == "Missing"


# --- two clocks: the gateway stamps the boots, the charger its charge ------------------------------

BOOTED_AT = datetime.now(UTC).replace(microsecond=0)  # the gateway's clock at the first event of each charge


def whole_second(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@st.composite
def a_charge_and_its_boots(draw) -> dict:
    """One charge as its charger lives it, an event a second; the charger's clock runs `offset`
    seconds off the gateway's, which stamps the boots (CONTRACT section 1, "Two clocks")."""
    samples = draw(st.lists(st.integers(1000, 60_000), max_size=3))
    return {
        "offset": draw(st.sampled_from([-600, -2, 2, 600])),
        "boot_first": draw(st.booleans()),
        "samples": samples,
        "reboot_after": draw(st.one_of(st.none(), st.integers(0, len(samples)))),  # samples sent before the charger reboots
        "start_again": draw(st.booleans()),  # after its reboot the charger sends the StartTransaction it holds again
        "meter_stop": draw(st.one_of(st.none(), st.integers(1001, 120_000))),  # None: it never ends
    }


def charge(cp: str, plan: dict) -> list[dict]:
    """The charge's events in the order the charger sends them, which is the order ingest receives them."""
    seconds = iter(range(1, 100))

    def gateway_ts() -> str:
        return whole_second(BOOTED_AT + timedelta(seconds=next(seconds)))

    def charger_ts() -> str:
        return whole_second(BOOTED_AT + timedelta(seconds=next(seconds) + plan["offset"]))

    events = [ev.booted(cp, ts=gateway_ts())] if plan["boot_first"] else []
    start = ev.started(cp, 1, meter_start=1000, ts=charger_ts())
    events.append(start)
    for index, value in enumerate([*plan["samples"], None]):
        if index == plan["reboot_after"]:
            events.append(ev.booted(cp, ts=gateway_ts()))
            if plan["start_again"]:
                events.append(start)  # the same event received again: the same eventId, a later receive order
        if value is not None:
            events.append(ev.sample(cp, 1, str(value), charger_ts()))
    if plan["meter_stop"] is not None:
        events.append(ev.ended(cp, 1, meter_stop=plan["meter_stop"], ts=charger_ts()))
    return events


def expected_end(plan: dict) -> tuple[str | None, int | None, str | None]:
    """(closedBy, energyWh, energySource): the charger's end wins; else a boot received after the
    start closes the session with the energy known; a boot received before it closes nothing."""
    if plan["meter_stop"] is not None:
        return "Charger", plan["meter_stop"] - 1000, "StopTransaction"
    if plan["reboot_after"] is None:
        return None, None, None
    if plan["samples"]:
        return "ChargerRebooted", plan["samples"][-1] - 1000, "MeterValues.Register"
    return "ChargerRebooted", None, "Missing"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(plan=a_charge_and_its_boots(), data=st.data())
async def test_a_boot_closes_the_session_it_was_received_after_whatever_either_clock_says(api, settings, pg, plan, data):
    in_order_cp, shuffled_cp = unique_id("CLOCKS"), unique_id("CLOCKS")
    await deliver(settings, pg, received(*charge(in_order_cp, plan)))
    published = received(*charge(shuffled_cp, plan))
    redelivered = data.draw(st.lists(st.sampled_from(published), max_size=len(published)), label="redelivered")
    await deliver(settings, pg, data.draw(st.permutations(published + redelivered), label="delivery order"))

    reference = await session_when(api, in_order_cp, 1)
    result = await session_when(api, shuffled_cp, 1)
    assert comparable(result) == comparable(reference)
    assert (result["closedBy"], result["energyWh"], result["energySource"]) == expected_end(plan)
    assert result["status"] == ("Active" if expected_end(plan)[0] is None else "Finalized")
