"""Commands module, RECEIVER: a partner's command is answered at once (CommandResponse), goes to
the charger through the commands service and the gateway, and its CommandResult is POSTed to the
partner's response_url once the charger answered, also when the partner was down meanwhile."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from services.ocpi.transport import timestamp
from tests.ingest import gateway_events as ev
from tests.ocpi.conftest import Cpo
from tests.ocpi.emsp import Emsp
from tests.ocpi.test_sessions_and_cdrs import Charging, session_id_of
from tests.ocpi.test_tokens import a_uid, token
from tests.sessions.flows import session_when
from tests.support import FakeGateway, eventually, unique_id

TYPE2 = {"standard": "IEC_62196_T2", "format": "SOCKET", "powerType": "AC_3_PHASE", "maxVoltage": 230, "maxAmperage": 32,
         "maxElectricPower": 22000}


async def published_charger(cpo: Cpo, emsp: Emsp) -> tuple[str, str]:
    """(siteId, chargePointId) of a charger with one connector at a site, once its EVSE is a
    Location's the partner can read."""
    status, site = await cpo.api.admin("POST", "/v1/sites", {
        "name": f"Site {uuid.uuid4().hex[:6]}", "timeZone": "Europe/Amsterdam", "address": "Stationsplein 1",
        "city": "Amsterdam", "postalCode": "1012AB", "country": "NLD",
        "coordinates": {"latitude": "52.37888", "longitude": "4.90072"}})
    assert status == 201, site
    cp = unique_id("RS")
    status, body = await cpo.api.admin("POST", "/v1/chargers", {"chargePointId": cp, "secret": "s3cret-s3cret", "siteId": site["siteId"]})
    assert status == 201, body
    status, body = await cpo.api.admin("PUT", f"/v1/chargers/{cp}/connectors/1", TYPE2)
    assert status == 200, body

    async def evse_published() -> bool:
        status, _, _ = await emsp.call("GET", f"{cpo.url}/ocpi/2.2.1/locations/{site['siteId']}/{cp}*1")
        return status == 200

    await eventually(evse_published)
    return site["siteId"], cp


def commands_url(cpo: Cpo, command: str) -> str:
    return f"{cpo.url}/ocpi/2.2.1/commands/{command}"


def results(emsp: Emsp, reference: str) -> list[dict]:
    return [push.body for push in emsp.pushes("commands") if push.method == "POST" and push.path.endswith(reference)]


async def test_start_session_goes_to_the_charger_and_its_result_to_the_response_url(
        cpo: Cpo, emsp: Emsp, fake_gateway: FakeGateway) -> None:
    await cpo.registered_emsp(emsp)
    site_id, cp = await published_charger(cpo, emsp)
    uid, reference = a_uid(), uuid.uuid4().hex
    body = {"response_url": f"{emsp.url}/ocpi/emsp/2.2.1/commands/START_SESSION/{reference}",
            "token": token(uid, type="APP_USER", whitelist="NEVER"), "location_id": site_id, "evse_uid": f"{cp}*1"}
    status, answer, _ = await emsp.call("POST", commands_url(cpo, "START_SESSION"), json=body)
    emsp.down = True  # the partner is away when the charger answers: the result waits for it
    assert status == 200 and answer["status_code"] == 1000, answer
    assert answer["data"]["result"] == "ACCEPTED" and answer["data"]["timeout"] > 0

    sent = await eventually(lambda: _gateway_call(fake_gateway, cp))
    assert sent["type"] == "RemoteStartTransaction" and sent["payload"] == {"idTag": uid, "connectorId": 1}
    partner = await eventually(lambda: _backlog(cpo, emsp))
    assert partner["pushBacklog"] >= 1 and results(emsp, reference) == []
    emsp.down = False
    assert await eventually(lambda: _results(emsp, reference)) == [{"result": "ACCEPTED"}]

    # The charger starts the session with the token: it is the partner's.
    emsp.authorizations[uid] = "ALLOWED"
    await cpo.api.send_events(ev.booted(cp), {**ev.started(cp, 11), "idTag": uid})
    session = await session_when(cpo.api, cp, 11, lambda s: s["authorization"] is not None)
    assert session["partnerToken"]["uid"] == uid and session["partnerToken"]["type"] == "APP_USER"
    assert session["authorization"] == "Accepted"


async def _gateway_call(fake_gateway: FakeGateway, cp: str) -> dict | None:
    return next((c for c in fake_gateway.calls if c["chargePointId"] == cp), None)


async def _backlog(cpo: Cpo, emsp: Emsp) -> dict | None:
    status, body = await cpo.api.admin("GET", "/v1/ocpi/partners?limit=500")
    for partner in body["items"]:
        if any(e["url"].startswith(emsp.url) for e in partner["endpoints"]) and partner["pushBacklog"]:
            return partner
    return None


async def _results(emsp: Emsp, reference: str) -> list[dict]:
    return results(emsp, reference)


async def test_a_charger_that_rejects_is_rejected_and_unlock_maps_its_answer(
        cpo: Cpo, emsp: Emsp, fake_gateway: FakeGateway) -> None:
    await cpo.registered_emsp(emsp)
    site_id, cp = await published_charger(cpo, emsp)
    fake_gateway.answer(200, {"commandId": "u-unlock", "response": {"status": "UnlockFailed"}})
    reference = uuid.uuid4().hex
    status, answer, _ = await emsp.call("POST", commands_url(cpo, "UNLOCK_CONNECTOR"), json={
        "response_url": f"{emsp.url}/ocpi/emsp/2.2.1/commands/UNLOCK_CONNECTOR/{reference}",
        "location_id": site_id, "evse_uid": f"{cp}*1", "connector_id": "1"})
    assert answer["data"]["result"] == "ACCEPTED", answer
    assert await eventually(lambda: _results(emsp, reference)) == [{"result": "FAILED"}]
    sent = await _gateway_call(fake_gateway, cp)
    assert sent["type"] == "UnlockConnector" and sent["payload"] == {"connectorId": 1}


async def test_commands_that_cannot_be_carried_out_are_answered_at_once(cpo: Cpo, emsp: Emsp) -> None:
    await cpo.registered_emsp(emsp)
    site_id, cp = await published_charger(cpo, emsp)
    url = f"{emsp.url}/ocpi/emsp/2.2.1/commands/x/{uuid.uuid4().hex}"
    cases = [
        ("START_SESSION", {"response_url": url, "token": token("L" * 21), "location_id": site_id, "evse_uid": f"{cp}*1"},
         "REJECTED"),  # a uid no OCPP 1.6 charger can take as its idTag
        ("START_SESSION", {"response_url": url, "token": token(a_uid()), "location_id": str(uuid.uuid4())}, "REJECTED"),
        ("START_SESSION", {"response_url": url, "token": token(a_uid()), "location_id": site_id, "evse_uid": "nope*1"},
         "REJECTED"),
        ("STOP_SESSION", {"response_url": url, "session_id": str(uuid.uuid4())}, "UNKNOWN_SESSION"),
        ("CANCEL_RESERVATION", {"response_url": url, "reservation_id": "R-unknown"}, "REJECTED"),
    ]
    for command, body, result in cases:
        status, answer, _ = await emsp.call("POST", commands_url(cpo, command), json=body)
        assert status == 200 and answer["data"]["result"] == result, (command, body, answer)


async def test_bad_command_requests_are_2001_and_a_wrong_token_401(cpo: Cpo, emsp: Emsp) -> None:
    await cpo.registered_emsp(emsp)
    url = f"{emsp.url}/ocpi/emsp/2.2.1/commands/x/1"
    cases = [
        ("REBOOT", {"response_url": url}),
        ("START_SESSION", {"response_url": url, "location_id": "L1"}),  # no token
        ("START_SESSION", {"response_url": "not a url", "token": token(a_uid()), "location_id": "L1"}),
        ("STOP_SESSION", {"response_url": url}),
        ("RESERVE_NOW", {"response_url": url, "token": token(a_uid()), "reservation_id": "R1", "location_id": "L1",
                         "expiry_date": "soon"}),
        ("UNLOCK_CONNECTOR", {"response_url": url, "location_id": "L1", "evse_uid": "E" * 37, "connector_id": "1"}),
        ("CANCEL_RESERVATION", ["R1"]),
    ]
    for command, body in cases:
        status, answer, _ = await emsp.call("POST", commands_url(cpo, command), json=body)
        assert (status, answer["status_code"]) == (400, 2001), (command, body, answer)
    status, answer, _ = await emsp.call("POST", commands_url(cpo, "STOP_SESSION"), json={"response_url": url, "session_id": "s"},
                                        token="wrong")
    assert status == 401 and answer["status_code"] == 2000


async def test_stop_session_stops_the_partners_transaction_at_its_charger_and_no_other_partners(
        cpo: Cpo, emsp: Emsp, fake_gateway: FakeGateway) -> None:
    await cpo.registered_emsp(emsp)
    charging = await Charging.ready(cpo, emsp)
    await charging.started(tx=4711)
    session_id = await session_id_of(emsp)

    other = Emsp(name="Other eMSP")
    await other.start()
    try:
        await cpo.registered_emsp(other)
        status, answer, _ = await other.call("POST", commands_url(cpo, "STOP_SESSION"), json={
            "response_url": f"{other.url}/ocpi/emsp/2.2.1/commands/STOP_SESSION/{uuid.uuid4().hex}", "session_id": session_id})
        assert status == 200 and answer["data"]["result"] == "UNKNOWN_SESSION", answer
    finally:
        await other.unregister()
        await other.close()
    assert [c for c in fake_gateway.calls if c["chargePointId"] == charging.cp] == []

    reference = uuid.uuid4().hex
    status, answer, _ = await emsp.call("POST", commands_url(cpo, "STOP_SESSION"), json={
        "response_url": f"{emsp.url}/ocpi/emsp/2.2.1/commands/STOP_SESSION/{reference}", "session_id": session_id})
    assert status == 200 and answer["status_code"] == 1000 and answer["data"]["result"] == "ACCEPTED", answer

    sent = await eventually(lambda: _gateway_call(fake_gateway, charging.cp))
    assert sent["type"] == "RemoteStopTransaction" and sent["payload"] == {"transactionId": 4711}
    assert await eventually(lambda: _results(emsp, reference)) == [{"result": "ACCEPTED"}]

    # Once the session ended, there is nothing left to stop.
    await charging.ended(4711, 60, meter_stop=2000)

    async def completed() -> bool:
        return any(p.body.get("status") == "COMPLETED" for p in emsp.pushes("sessions") if p.path.endswith(session_id))

    await eventually(completed)
    status, answer, _ = await emsp.call("POST", commands_url(cpo, "STOP_SESSION"), json={
        "response_url": f"{emsp.url}/ocpi/emsp/2.2.1/commands/STOP_SESSION/{uuid.uuid4().hex}", "session_id": session_id})
    assert answer["data"]["result"] == "UNKNOWN_SESSION", answer


async def _sent(fake_gateway: FakeGateway, cp: str, ocpp_type: str, count: int) -> list[dict] | None:
    found = [c for c in fake_gateway.calls if c["chargePointId"] == cp and c["type"] == ocpp_type]
    return found if len(found) >= count else None


async def _reserve(cpo: Cpo, emsp: Emsp, site_id: str, cp: str, uid: str, reservation_id: str, expiry: str) -> str:
    """RESERVE_NOW of the charger's EVSE, answered ACCEPTED at once; the reference of its response_url."""
    reference = uuid.uuid4().hex
    status, answer, _ = await emsp.call("POST", commands_url(cpo, "RESERVE_NOW"), json={
        "response_url": f"{emsp.url}/ocpi/emsp/2.2.1/commands/RESERVE_NOW/{reference}", "token": token(uid),
        "expiry_date": expiry, "reservation_id": reservation_id, "location_id": site_id, "evse_uid": f"{cp}*1"})
    assert status == 200 and answer["status_code"] == 1000 and answer["data"]["result"] == "ACCEPTED", answer
    return reference


async def test_reserve_now_reaches_the_charger_and_its_answer_is_the_result(
        cpo: Cpo, emsp: Emsp, fake_gateway: FakeGateway) -> None:
    await cpo.registered_emsp(emsp)
    site_id, cp = await published_charger(cpo, emsp)
    uid, reservation_id = a_uid(), f"R-{uuid.uuid4().hex[:8]}"
    expiry = timestamp(datetime.now(UTC) + timedelta(minutes=30))

    reference = await _reserve(cpo, emsp, site_id, cp, uid, reservation_id, expiry)
    [sent] = await eventually(lambda: _sent(fake_gateway, cp, "ReserveNow", 1))
    payload = sent["payload"]
    assert isinstance(payload["reservationId"], int) and not isinstance(payload["reservationId"], bool)
    assert payload == {"connectorId": 1, "expiryDate": expiry, "idTag": uid, "reservationId": payload["reservationId"]}
    assert await eventually(lambda: _results(emsp, reference)) == [{"result": "ACCEPTED"}]

    # The same reservation again (OCPI: it replaces the one held) is the same OCPP reservation; an
    # occupied charger's answer is EVSE_OCCUPIED.
    fake_gateway.answer(200, {"commandId": "r-occupied", "response": {"status": "Occupied"}})
    later = timestamp(datetime.now(UTC) + timedelta(hours=1))
    reference = await _reserve(cpo, emsp, site_id, cp, uid, reservation_id, later)
    again = (await eventually(lambda: _sent(fake_gateway, cp, "ReserveNow", 2)))[1]["payload"]
    assert again["reservationId"] == payload["reservationId"] and again["expiryDate"] == later
    assert await eventually(lambda: _results(emsp, reference)) == [{"result": "EVSE_OCCUPIED"}]


async def test_cancel_reservation_cancels_the_ocpp_reservation_and_its_answer_is_the_result(
        cpo: Cpo, emsp: Emsp, fake_gateway: FakeGateway) -> None:
    await cpo.registered_emsp(emsp)
    site_id, cp = await published_charger(cpo, emsp)
    reservation_id = f"R-{uuid.uuid4().hex[:8]}"
    await _reserve(cpo, emsp, site_id, cp, a_uid(), reservation_id, timestamp(datetime.now(UTC) + timedelta(minutes=30)))
    [reserved] = await eventually(lambda: _sent(fake_gateway, cp, "ReserveNow", 1))

    async def cancel() -> str:
        reference = uuid.uuid4().hex
        status, answer, _ = await emsp.call("POST", commands_url(cpo, "CANCEL_RESERVATION"), json={
            "response_url": f"{emsp.url}/ocpi/emsp/2.2.1/commands/CANCEL_RESERVATION/{reference}",
            "reservation_id": reservation_id})
        assert status == 200 and answer["data"]["result"] == "ACCEPTED", answer
        return reference

    reference = await cancel()
    [sent] = await eventually(lambda: _sent(fake_gateway, cp, "CancelReservation", 1))
    assert sent["payload"] == {"reservationId": reserved["payload"]["reservationId"]}
    assert await eventually(lambda: _results(emsp, reference)) == [{"result": "ACCEPTED"}]

    # A charger that no longer holds it rejects the cancellation: UNKNOWN_RESERVATION.
    fake_gateway.answer(200, {"commandId": "c-rejected", "response": {"status": "Rejected"}})
    reference = await cancel()
    assert await eventually(lambda: _results(emsp, reference)) == [{"result": "UNKNOWN_RESERVATION"}]
