"""Finalize on request, late samples, billing's prices and settlement statuses, reads and pagination."""
from __future__ import annotations

import uuid
from decimal import Decimal

from shared.domain import SessionPriced, SettlementStatusChanged
from tests.ingest import gateway_events as ev
from tests.sessions.flows import DomainListener, DomainPublisher, applied, finalized, send, session_when, sessions_of
from tests.support import eventually, unique_id

START, MID, LATE, END = "2026-11-25T10:01:00Z", "2026-11-25T10:30:00Z", "2026-11-25T10:50:00Z", "2026-11-25T11:00:00Z"


async def finalize(api, session_id: str, query: str = "") -> tuple[int, dict]:
    return await api.admin("POST", f"/v1/sessions/{session_id}/finalize{query}")


async def ended_by_register(api, cp: str) -> dict:
    await send(api, ev.started(cp, 1, meter_start=1000, ts=START), ev.sample(cp, 1, "3000", MID), ev.ended(cp, 1, ts=END))
    return await session_when(api, cp, 1, finalized)


async def settlement(publisher: DomainPublisher, session_id: str, status: str, at: str) -> None:
    await publisher.publish(SettlementStatusChanged(settlementId=uuid.uuid4(), sessionId=session_id, status=status, at=at))


async def test_late_samples_refinalize_and_publish_a_higher_revision(api, settings):
    cp = unique_id()
    async with DomainListener(settings, "session.finalized") as listener:
        first = await ended_by_register(api, cp)
        assert first["energyWh"] == 2000
        await send(api, ev.sample(cp, 1, "4500", LATE))
        later = await session_when(api, cp, 1, lambda s: s["energyWh"] == 3500)
        assert later["energySource"] == "MeterValues.Register" and later["finalizedAt"] >= first["finalizedAt"]
        published = await eventually(lambda: _bodies(listener, first["sessionId"], 2))
    assert [(b["revision"], b["energyWh"]) for b in published] == [(1, "2000"), (2, "3500")]
    assert published[1]["energySource"] == "MeterValues.Register" and published[1]["transactionId"] == 1
    assert published[1]["startedAt"] == START and published[1]["endedAt"] == END and published[1]["chargePointId"] == cp


async def _bodies(listener: DomainListener, session_id: str, count: int):
    bodies = sorted(listener.bodies_for(session_id), key=lambda b: b["revision"])
    return bodies if len(bodies) >= count else None


async def test_finalize_without_force_returns_the_session_unchanged(api):
    cp = unique_id()
    session = await ended_by_register(api, cp)
    status, body = await finalize(api, session["sessionId"])
    assert status == 200 and body == {"session": session, "force": False}


async def test_force_recomputes_and_publishes_a_new_revision(api, settings):
    cp = unique_id()
    async with DomainListener(settings, "session.finalized") as listener:
        session = await ended_by_register(api, cp)
        status, body = await finalize(api, session["sessionId"], "?force=true")
        assert status == 200 and body["force"] is True
        assert body["session"]["energyWh"] == 2000 and body["session"]["finalizedAt"] >= session["finalizedAt"]
        published = await eventually(lambda: _bodies(listener, session["sessionId"], 2))
    assert [b["revision"] for b in published] == [1, 2]


async def test_an_active_session_is_closed_by_the_operator_as_it_stands_and_a_later_end_wins(api, pg):
    cp = unique_id()
    await applied(pg, await send(api, ev.started(cp, 1, meter_start=100, ts=START), ev.sample(cp, 1, "600", MID)))
    session = await session_when(api, cp, 1)
    assert session["status"] == "Active" and session["energyWh"] is None and session["finalizedAt"] is None
    assert session["closedBy"] is None
    status, body = await finalize(api, session["sessionId"])
    assert status == 200 and body["force"] is False
    closed = body["session"]
    assert closed["status"] == "Finalized" and closed["endedAt"] is None and closed["closedBy"] == "Operator"
    assert closed["energyWh"] == 500 and closed["energySource"] == "MeterValues.Register"
    assert (await finalize(api, session["sessionId"]))[1]["session"] == closed  # done once
    # the real end arriving later re-finalizes from the charger's own reading
    await send(api, ev.ended(cp, 1, meter_stop=900, ts=END))
    ended = await session_when(api, cp, 1, lambda s: s["endedAt"] == END)
    assert ended["energyWh"] == 800 and ended["energySource"] == "StopTransaction" and ended["closedBy"] == "Charger"


async def test_submitted_settlement_refuses_force_and_freezes_late_samples(api, settings, pg):
    cp = unique_id()
    session = await ended_by_register(api, cp)
    async with DomainPublisher(settings) as publisher:
        await settlement(publisher, session["sessionId"], "Pending", "2026-11-25T11:00:01Z")
        await settlement(publisher, session["sessionId"], "Submitted", "2026-11-25T11:05:00Z")
        await settlement(publisher, session["sessionId"], "Pending", "2026-11-25T11:00:01Z")  # old news, again
    # a force tried before the status arrives would rightly re-finalize: wait until sessions has it
    await eventually(lambda: pg.fetchval("SELECT settlement_status = 'Submitted' FROM sessions.sessions WHERE session_id = $1",
                                         uuid.UUID(session["sessionId"])))

    status, body = await finalize(api, session["sessionId"], "?force=true")
    assert status == 409 and body["title"] == "Settlement in progress" and "Submitted" in body["detail"]
    late = await send(api, ev.sample(cp, 1, "9000", LATE))
    await applied(pg, late)
    # the money that moved is what counts; what came later shows apart
    unbilled = {**session, "unbilledEnergyWh": 6000}
    status, body = await api.admin("GET", f"/v1/sessions/{session['sessionId']}")
    assert status == 200 and {**body, "finalizedAt": None} == {**unbilled, "finalizedAt": None}
    status, body = await finalize(api, session["sessionId"])
    assert status == 200 and body["session"]["energyWh"] == session["energyWh"] == 2000


async def test_pending_settlement_still_refinalizes(api, settings):
    cp = unique_id()
    session = await ended_by_register(api, cp)
    async with DomainPublisher(settings) as publisher:
        await settlement(publisher, session["sessionId"], "Pending", "2026-11-25T11:00:01Z")
    await send(api, ev.sample(cp, 1, "5000", LATE))
    assert (await session_when(api, cp, 1, lambda s: s["energyWh"] == 4000))["energySource"] == "MeterValues.Register"


async def test_cost_fields_come_from_the_highest_priced_revision(api, settings, pg):
    cp = unique_id()
    session = await ended_by_register(api, cp)
    tariff_1, tariff_2 = uuid.uuid4(), uuid.uuid4()
    async with DomainPublisher(settings) as publisher:
        ids = [
            await publisher.publish(SessionPriced(sessionId=session["sessionId"], tariffId=tariff, costAmount=Decimal(amount),
                                                  costCurrency="USD", pricedAt=at, revision=revision))
            for revision, tariff, amount, at in ((2, tariff_2, "1.05", "2026-11-25T11:00:02Z"),
                                                 (1, tariff_1, "0.60", "2026-11-25T11:00:01Z"))
        ]
    await applied(pg, ids)
    status, priced = await api.admin("GET", f"/v1/sessions/{session['sessionId']}")
    assert status == 200
    assert priced["tariffId"] == str(tariff_2) and priced["costAmount"] == "1.05" and priced["costCurrency"] == "USD"
    assert priced["pricedAt"] == "2026-11-25T11:00:02Z" and priced["energyWh"] == session["energyWh"]


async def test_get_session_and_404s(api):
    cp = unique_id()
    session = await ended_by_register(api, cp)
    status, body = await api.admin("GET", f"/v1/sessions/{session['sessionId']}")
    assert status == 200 and body == session
    assert set(body) == {"sessionId", "chargePointId", "connectorId", "transactionId", "idTag", "status", "startedAt",
                         "endedAt", "meterStartWh", "meterStopWh", "reason", "energyWh", "energySource", "isEstimated",
                         "finalizedAt", "closedBy", "authorization", "partnerToken", "conflicts", "unbilledEnergyWh", "tariffId", "costAmount", "costCurrency",
                         "costBreakdown", "pricedAt"}
    for path in (f"/v1/sessions/{uuid.uuid4()}", "/v1/sessions/not-a-uuid"):
        status, body = await api.admin("GET", path)
        assert status == 404 and body["title"] == "Session not found"
        status, body = await api.admin("POST", path + "/finalize?force=true")
        assert status == 404 and body["title"] == "Session not found"
    status, body = await finalize(api, session["sessionId"], "?force=perhaps")
    assert status == 400 and body["errors"][0]["loc"] == ["query", "force"]


async def test_pagination_walks_every_session_once_newest_first(api):
    cp = unique_id()
    events = []
    for tx in range(1, 8):
        events += [ev.started(cp, tx, ts=f"2026-11-25T1{tx}:00:00Z"), ev.ended(cp, tx, meter_stop=tx * 100, ts=f"2026-11-25T1{tx}:30:00Z")]
    # a session whose start never came sorts by the first time it was seen
    events.append(ev.ended(cp, 99, meter_stop=5, ts="2026-11-25T14:10:00Z"))
    await send(api, *events)
    await eventually(lambda: _all_finalized(api, cp, 8))
    seen, cursor = [], None
    while True:
        status, body = await api.admin("GET", f"/v1/chargers/{cp}/sessions?limit=3" + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200 and len(body["items"]) <= 3
        seen += [s["transactionId"] for s in body["items"]]
        cursor = body["nextCursor"]
        if not cursor:
            break
    assert seen == [7, 6, 5, 99, 4, 3, 2, 1]


async def _all_finalized(api, cp: str, count: int) -> bool:
    items = await sessions_of(api, cp)
    return len(items) == count and all(finalized(s) for s in items)
