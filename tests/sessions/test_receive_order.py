"""CONTRACT section 1's order of one charger's events: by ts, and on equal ts by receive order.
Any number of one charger's events within one second, received by ingest in the charger's order,
then delivered behind ingest in any order and any number of times (the broker redelivers,
competing consumers overtake each other), end in the state of the last one received: its
connector status, its boot data, the ladder's last Register sample."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.ingest.intake import ReceiveClock, accept_events
from shared import envelope
from shared.broker import Broker
from shared.topology import EVENTS
from tests.ingest import gateway_events as ev
from tests.sessions.flows import applied, finalized, session_when
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
    clock = ReceiveClock()
    start = accept_events(ev.started(cp, 1, meter_start=1000, ts=SECOND), clock)[0][0]
    received = [accept_events(event(cp, kind, value), clock)[0][0] for kind, value in sent]
    end = accept_events(ev.ended(cp, 1, ts="2026-11-25T10:00:59Z"), clock)[0][0]
    published = [start, *received, end]
    redelivered = data.draw(st.lists(st.sampled_from(published), max_size=len(published)), label="redelivered")
    behind_ingest = data.draw(st.permutations(published + redelivered), label="delivery order")

    broker = Broker(settings.amqp_url, settings.amqp_prefix, publish_timeout=5)
    await broker.connect()
    try:
        for accepted in behind_ingest:  # one envelope each, confirmed before the next: this order, exactly
            await broker.publish_envelope(EVENTS.key, envelope.EVENTS_ROUTING_KEY, [(accepted.event_id, accepted.encoded)])
        # a last, distinct event: once it is applied, everything before it in the queue is too
        sentinel = accept_events(ev.heartbeat(cp, ts="2026-11-25T10:00:59Z"), clock)[0][0]
        await broker.publish_envelope(EVENTS.key, envelope.EVENTS_ROUTING_KEY, [(sentinel.event_id, sentinel.encoded)])
    finally:
        await broker.close()
    await applied(pg, [sentinel.event_id])

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
