"""Every charger call answered as CONTRACT section 11 lists: a real charge point's whole session
priced and settled as through the reference gateway, real-time authorization, CallErrors for
unknown actions and schema violations, what a charger got wrong taken and flagged, and calls sent
without waiting answered in order up to a bound."""
from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from ocpp.v16 import call
from services.gateway.charge_point import MAX_QUEUED_CALLS
from tests.chargers.test_reference_gateway import priced_site, settlement_of
from tests.gateway.conftest import connected
from tests.support import eventually, unique_id


def charger_time(seconds_from_now: float = 0, *, fraction: bool = False) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=seconds_from_now)
    if not fraction:
        moment = moment.replace(microsecond=0)
    return moment.isoformat().replace("+00:00", "Z")


async def raw_call(charger, action: str, payload, unique_id_: str | None = None) -> list:
    """Send a frame as a charger with bugs would, and return the gateway's answer frame."""
    unique_id_ = unique_id_ or unique_id("call")
    await charger._connection.send(json.dumps([2, unique_id_, action, payload]))
    return await _answer(charger, unique_id_)


async def _answer(charger, unique_id_: str) -> list:
    response = await asyncio.wait_for(charger._response_queue.get(), 20)
    assert response.unique_id == unique_id_
    if response.message_type_id == 4:
        return [4, response.unique_id, response.error_code, response.error_description, response.error_details]
    return [3, response.unique_id, response.payload]


async def test_a_whole_session_ends_priced_and_settled(api, gateway, registered):
    cp, secret = await registered()
    site, tariff = await priced_site(api, "0.30")
    assert (await api.admin("PUT", f"/v1/chargers/{cp}/site", {"siteId": site["siteId"]}))[0] == 200
    tag = unique_id("T")[:20]
    assert (await api.admin("POST", "/v1/tokens", {"idTag": tag}))[0] == 201
    await asyncio.sleep(1.1)  # the charger's clock has whole seconds: the start comes after the tariff
    async with connected(gateway, cp, secret) as charger:
        await charger.boot()
        assert (await charger.call(call.Authorize(id_tag=tag))).id_tag_info["status"] == "Accepted"
        await charger.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Preparing", timestamp=charger_time()))
        started = await charger.call(call.StartTransaction(connector_id=1, id_tag=tag, meter_start=1000, timestamp=charger_time()))
        assert started.id_tag_info["status"] == "Accepted"
        assert 0 < started.transaction_id < 2**31
        await charger.call(call.MeterValues(connector_id=1, transaction_id=started.transaction_id, meter_value=[
            {"timestamp": charger_time(600, fraction=True), "sampledValue": [{"value": "5.5", "unit": "kWh",
                                                                             "measurand": "Energy.Active.Import.Register"}]}]))
        await charger.call(call.StopTransaction(meter_stop=13345, timestamp=charger_time(1800), transaction_id=started.transaction_id,
                                                reason="EVDisconnected"))

    async def settled():
        _, body = await api.admin("GET", f"/v1/chargers/{cp}/sessions")
        items = body.get("items", [])
        if not items or items[0]["costAmount"] is None:
            return None
        settlement = await settlement_of(api, items[0]["sessionId"])
        return (items[0], settlement) if settlement else None

    session, settlement = await eventually(settled)
    assert len((await api.admin("GET", f"/v1/chargers/{cp}/sessions"))[1]["items"]) == 1
    assert (session["transactionId"], session["idTag"], session["energyWh"]) == (started.transaction_id, tag, 12345)
    assert (session["costAmount"], session["tariffId"], session["authorization"]) == ("3.70", tariff["tariffId"], "Accepted")
    assert (settlement["amount"], settlement["status"]) == ("3.70", "Pending")


async def test_authorize_and_start_carry_the_idtaginfo_of_the_cpms(api, gateway, registered):
    cp, secret = await registered()
    blocked, expired = unique_id("B")[:20], unique_id("E")[:20]
    assert (await api.admin("POST", "/v1/tokens", {"idTag": blocked, "status": "Blocked"}))[0] == 201
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert (await api.admin("POST", "/v1/tokens", {"idTag": expired, "expiresAt": past}))[0] == 201
    async with connected(gateway, cp, secret) as charger:
        assert (await charger.call(call.Authorize(id_tag=blocked))).id_tag_info["status"] == "Blocked"
        assert (await charger.call(call.Authorize(id_tag=expired))).id_tag_info["status"] == "Expired"
        started_at = charger_time()
        start = await charger.call(call.StartTransaction(connector_id=2, id_tag=blocked, meter_start=0, timestamp=started_at))
        assert start.id_tag_info["status"] == "Blocked"  # refused at the charger, before energy flows
        resent = await charger.call(call.StartTransaction(connector_id=2, id_tag=blocked, meter_start=0, timestamp=started_at))
        assert resent.transaction_id == start.transaction_id  # a resend is the same transaction

    async def recorded():
        _, body = await api.admin("GET", f"/v1/chargers/{cp}/sessions")
        return body["items"] if body.get("items") else None

    sessions = await eventually(recorded)
    assert [(s["transactionId"], s["authorization"]) for s in sessions] == [(start.transaction_id, "Blocked")]


async def test_unknown_actions_and_broken_frames_get_call_errors(gateway, registered):
    cp, secret = await registered()
    async with connected(gateway, cp, secret) as charger:
        assert (await raw_call(charger, "FlyToTheMoon", {}))[2] == "NotImplemented"
        assert (await raw_call(charger, "Reset", {"type": "Hard"}))[2] == "NotSupported"  # the central system's own action
        await charger._connection.send('[2, "broken-1", "Heartbeat", {')  # not JSON: the unique id can still be read
        assert (await _answer(charger, "broken-1"))[2] == "FormationViolation"
        boot = await raw_call(charger, "BootNotification", {"chargePointVendor": "Alfen"})  # model missing
        assert boot[0] == 4 and boot[2] in ("ProtocolError", "OccurenceConstraintViolation")
        boot = await raw_call(charger, "BootNotification", {"chargePointVendor": "A", "chargePointModel": "B", "colour": "red"})
        assert boot[0] == 4 and boot[2] == "FormationViolation"
        status = await raw_call(charger, "StatusNotification", {"connectorId": "one", "errorCode": "NoError", "status": "Available"})
        assert status[0] == 4 and status[2] == "TypeConstraintViolation"
        stop = await raw_call(charger, "StopTransaction", {"transactionId": 1.5, "meterStop": 10, "timestamp": charger_time()})
        assert stop[0] == 4 and stop[2] == "TypeConstraintViolation"
        assert (await charger.call(call.Heartbeat())).current_time  # the connection goes on


async def test_what_a_charger_got_wrong_but_can_be_attributed_is_taken_and_flagged(api, gateway, registered, pg):
    cp, secret = await registered()
    long_tag = "X" * 25
    async with connected(gateway, cp, secret) as charger:
        start = await raw_call(charger, "StartTransaction", {"connectorId": 1, "idTag": long_tag, "meterStart": 0,
                                                              "timestamp": charger_time(), "vendorExtra": {"x": 1}})
        assert start[0] == 3 and start[2]["idTagInfo"]["status"] == "Invalid"
        tx = start[2]["transactionId"]
        status = await raw_call(charger, "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Dancing",
                                                                "timestamp": "yesterday"})
        assert status == [3, status[1], {}]
        meter = await raw_call(charger, "MeterValues", {"connectorId": 1, "transactionId": tx, "meterValue": [
            {"timestamp": charger_time(60), "sampledValue": [{"value": "not a number"}]}]})
        assert meter[0] == 3
        stop = await raw_call(charger, "StopTransaction", {"transactionId": tx, "meterStop": 2500, "timestamp": charger_time(120),
                                                           "reason": "Vibes"})
        assert stop[0] == 3

    async def archived():
        rows = await pg.fetch("SELECT body FROM ingest.events WHERE charge_point_id = $1", cp)
        return [r["body"] for r in rows] if len(rows) >= 5 else None

    bodies = {body["type"]: body for body in await eventually(archived)}
    assert "id_tag_too_long" in bodies["TransactionStarted"]["anomalies"]
    assert bodies["TransactionStarted"]["idTag"] == long_tag
    assert {"unknown_status", "unreadable_ts"} <= set(bodies["ConnectorStatusChanged"]["anomalies"])
    assert "non_numeric_sample" in bodies["MeterSample"]["anomalies"]

    async def ended():
        _, body = await api.admin("GET", f"/v1/chargers/{cp}/sessions")
        items = body.get("items", [])
        return items[0] if items and items[0]["endedAt"] else None

    assert (await eventually(ended))["energyWh"] == 2500


async def test_calls_sent_without_waiting_are_answered_in_order_and_a_flood_beyond_the_queue_hears_internal_error(
        make_gateway, registered, ingest_proxy):
    cp, secret = await registered()
    gateway = await make_gateway(base_url=f"http://127.0.0.1:{ingest_proxy.port}")
    async with connected(gateway, cp, secret) as charger:
        await charger.boot()
        ingest_proxy.freeze()  # ingest is slow: the first call stays in flight, the others wait their turn
        ids = [unique_id(f"status-{n}") for n in range(MAX_QUEUED_CALLS + 3)]
        for n, id_ in enumerate(ids):
            payload = {"connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": charger_time(n)}
            await charger._connection.send(json.dumps([2, id_, "StatusNotification", payload]))
        for id_ in ids[-2:]:  # one in flight and MAX_QUEUED_CALLS waiting: these two are turned away
            refused = await _answer(charger, id_)
            assert refused[0] == 4 and refused[2] == "InternalError"
        ingest_proxy.thaw()
        for id_ in ids[:-2]:
            assert await _answer(charger, id_) == [3, id_, {}]
        assert (await charger.call(call.Heartbeat())).current_time  # and the connection goes on
