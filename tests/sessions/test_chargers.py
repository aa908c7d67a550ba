"""Live charger state and connectors as the operator reads them."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from shared.domain import ChargerSiteAssigned
from shared.jsonutil import format_ts
from tests.ingest import gateway_events as ev
from tests.sessions.flows import DomainPublisher, applied, send
from tests.support import eventually, unique_id

CHARGER_FIELDS = {"chargePointId", "isActive", "vendor", "model", "firmwareVersion", "ocppVersion", "siteId",
                  "lastSeenAt", "lastHeartbeatAt", "clockSkewSeconds", "createdAt", "updatedAt"}


async def charger_when(api, cp: str, condition) -> dict:
    async def probe():
        status, body = await api.admin("GET", f"/v1/chargers/{cp}")
        return body if status == 200 and condition(body) else None

    return await eventually(probe)


async def connectors_when(api, cp: str, condition) -> list[dict]:
    async def probe():
        status, body = await api.admin("GET", f"/v1/chargers/{cp}/connectors")
        return body["items"] if status == 200 and condition(body["items"]) else None

    return await eventually(probe)


async def test_a_booted_unregistered_charger_is_visible_and_inactive(api):
    cp = unique_id()
    await send(api, ev.booted(cp, ts="2026-11-25T10:00:00Z"), ev.heartbeat(cp, ts="2026-11-25T10:00:05Z"))
    charger = await charger_when(api, cp, lambda c: c["lastHeartbeatAt"] is not None)
    assert set(charger) == CHARGER_FIELDS
    assert charger["isActive"] is False and charger["siteId"] is None
    assert (charger["vendor"], charger["model"], charger["firmwareVersion"], charger["ocppVersion"]) == (
        "Alfen", "Eve Single", "6.1.2", "1.6")
    assert charger["lastSeenAt"] == "2026-11-25T10:00:05Z" and charger["lastHeartbeatAt"] == "2026-11-25T10:00:05Z"


async def test_the_newest_boot_wins_and_the_heartbeat_time_never_goes_back(api):
    cp = unique_id()
    newer = ev.booted(cp, ts="2026-11-25T12:00:00Z") | {"firmwareVersion": "7.0.0"}
    await send(api, newer, ev.heartbeat(cp, ts="2026-11-25T12:00:10Z"))
    await charger_when(api, cp, lambda c: c["lastHeartbeatAt"] == "2026-11-25T12:00:10Z")
    await send(api, ev.booted(cp, ts="2026-11-25T09:00:00Z"), ev.heartbeat(cp, ts="2026-11-25T09:00:10Z"),
               ev.booted(cp, ts="2026-11-25T12:30:00Z") | {"model": "Eve Double"} | {"firmwareVersion": "7.0.1"})
    charger = await charger_when(api, cp, lambda c: c["model"] == "Eve Double")
    assert charger["firmwareVersion"] == "7.0.1"
    assert charger["lastHeartbeatAt"] == "2026-11-25T12:00:10Z" and charger["lastSeenAt"] == "2026-11-25T12:30:00Z"


async def test_last_seen_is_the_last_event_received_whichever_clock_stamped_it(api, pg):
    """CONTRACT section 1, "Two clocks": a charger ten minutes ahead of the gateway. Its status says
    10:10, the gateway's heartbeat received after it says 10:00:30: the heartbeat was seen last. The
    skew is the charger's own clock's; the heartbeat and a firmware status (OCPP gives neither a
    timestamp) show the gateway's and change nothing."""
    cp = unique_id()
    now = datetime.now(UTC).replace(microsecond=0)
    ahead, gateway = now + timedelta(minutes=10), now + timedelta(seconds=30)
    firmware = {"type": "FirmwareStatus", "chargePointId": cp, "status": "Installed", "ts": format_ts(now)}
    await applied(pg, await send(api, ev.status(cp, 1, "Available", ts=format_ts(ahead)), firmware,
                                 ev.heartbeat(cp, ts=format_ts(gateway))))
    charger = await charger_when(api, cp, lambda c: c["lastHeartbeatAt"] is not None)
    assert charger["lastSeenAt"] == charger["lastHeartbeatAt"] == format_ts(gateway)
    assert 590 < charger["clockSkewSeconds"] <= 600  # its ts, ten minutes ahead, against our receipt a moment later


async def test_registration_activation_and_site_follow_the_registry(api, settings):
    cp = unique_id()
    site = uuid.uuid4()
    status, _ = await api.admin("POST", "/v1/chargers", {"chargePointId": cp, "secret": "s3cret-s3cret", "siteId": str(site)})
    assert status == 201
    charger = await charger_when(api, cp, lambda c: c["isActive"])
    assert charger["siteId"] == str(site) and charger["vendor"] is None and charger["lastSeenAt"] is None
    await send(api, ev.booted(cp))
    await charger_when(api, cp, lambda c: c["vendor"] == "Alfen" and c["isActive"])
    assert (await api.admin("PUT", f"/v1/chargers/{cp}/active", {"isActive": False}))[0] == 200
    await charger_when(api, cp, lambda c: not c["isActive"])
    other_site = uuid.uuid4()
    async with DomainPublisher(settings) as publisher:
        # an assignment older than the one we know is ignored, a newer one applies
        await publisher.publish(ChargerSiteAssigned(chargePointId=cp, siteId=uuid.uuid4(), at="2000-01-01T00:00:00Z"))
        await publisher.publish(ChargerSiteAssigned(chargePointId=cp, siteId=other_site, at="2099-01-01T00:00:00Z"))
    charger = await charger_when(api, cp, lambda c: c["siteId"] == str(other_site))
    assert charger["isActive"] is False


async def test_connector_status_newest_by_ts_wins_even_when_an_older_one_comes_later(api):
    cp = unique_id()
    await send(api, ev.status(cp, 1, "Charging", ts="2026-11-25T10:05:00Z"), ev.status(cp, 2, "Available", ts="2026-11-25T10:00:00Z"),
               ev.status(cp, 0, "Available", ts="2026-11-25T10:00:00Z"))
    await connectors_when(api, cp, lambda items: len(items) == 3)
    await send(api, ev.status(cp, 1, "Preparing", ts="2026-11-25T10:01:00Z"),
               ev.status(cp, 2, "Faulted", ts="2026-11-25T10:06:00Z", error="GroundFailure"))
    items = await connectors_when(api, cp, lambda items: any(i["status"] == "Faulted" for i in items))
    assert [{k: i[k] for k in ("connectorId", "status", "errorCode", "updatedAt")} for i in items] == [
        {"connectorId": 0, "status": "Available", "errorCode": "NoError", "updatedAt": "2026-11-25T10:00:00Z"},
        {"connectorId": 1, "status": "Charging", "errorCode": "NoError", "updatedAt": "2026-11-25T10:05:00Z"},
        {"connectorId": 2, "status": "Faulted", "errorCode": "GroundFailure", "updatedAt": "2026-11-25T10:06:00Z"},
    ]
    assert all(i[k] is None for i in items for k in SPEC_FIELDS), "no specs were given"


SPEC_FIELDS = ("standard", "format", "powerType", "maxVoltage", "maxAmperage", "maxElectricPower")
TYPE2_22KW = {"standard": "IEC_62196_T2", "format": "SOCKET", "powerType": "AC_3_PHASE", "maxVoltage": 230,
              "maxAmperage": 32, "maxElectricPower": 22080}


async def test_a_connector_described_before_it_reports_shows_its_specs_then_its_status(api):
    cp = unique_id()
    await send(api, ev.booted(cp))
    await charger_when(api, cp, lambda c: True)
    status, body = await api.admin("PUT", f"/v1/chargers/{cp}/connectors/2", TYPE2_22KW)
    assert status == 200, body
    assert body == {"connectorId": 2, "status": None, "errorCode": None, "updatedAt": None} | TYPE2_22KW
    await send(api, ev.status(cp, 2, "Available", ts="2026-11-25T10:00:00Z"), ev.status(cp, 1, "Available", ts="2026-11-25T10:00:00Z"))
    items = await connectors_when(api, cp, lambda items: all(i["status"] == "Available" for i in items) and len(items) == 2)
    assert items[1] == {"connectorId": 2, "status": "Available", "errorCode": "NoError", "updatedAt": "2026-11-25T10:00:00Z"} | TYPE2_22KW
    assert all(items[0][k] is None for k in SPEC_FIELDS)


async def test_a_put_replaces_every_spec_and_one_left_out_is_unknown(api):
    cp = unique_id()
    await send(api, ev.status(cp, 1, "Charging"))
    await connectors_when(api, cp, lambda items: len(items) == 1)
    assert (await api.admin("PUT", f"/v1/chargers/{cp}/connectors/1", TYPE2_22KW))[0] == 200
    status, body = await api.admin("PUT", f"/v1/chargers/{cp}/connectors/1", {"standard": "IEC_62196_T2_COMBO", "format": "CABLE",
                                                                               "powerType": "DC", "maxElectricPower": 150000})
    assert status == 200 and body["status"] == "Charging"
    assert {k: body[k] for k in SPEC_FIELDS} == {"standard": "IEC_62196_T2_COMBO", "format": "CABLE", "powerType": "DC",
                                                  "maxVoltage": None, "maxAmperage": None, "maxElectricPower": 150000}
    _, listed = await api.admin("GET", f"/v1/chargers/{cp}/connectors")
    assert listed["items"] == [body]


async def test_bad_connector_specs_are_400_problems_and_change_nothing(api):
    cp = unique_id()
    await send(api, ev.status(cp, 1, "Available"))
    await connectors_when(api, cp, lambda items: len(items) == 1)
    assert (await api.admin("PUT", f"/v1/chargers/{cp}/connectors/1", TYPE2_22KW))[0] == 200
    for path, body in ((f"/v1/chargers/{cp}/connectors/1", {"standard": "Type2"}),
                       (f"/v1/chargers/{cp}/connectors/1", {"format": "PLUG"}),
                       (f"/v1/chargers/{cp}/connectors/1", {"maxElectricPower": 0}),
                       (f"/v1/chargers/{cp}/connectors/1", {"maxAmperage": 1.5}),
                       (f"/v1/chargers/{cp}/connectors/1", {"colour": "blue"}),
                       (f"/v1/chargers/{cp}/connectors/0", TYPE2_22KW),
                       (f"/v1/chargers/{cp}/connectors/x", TYPE2_22KW)):
        status, problem = await api.admin("PUT", path, body)
        assert status == 400 and api.last_response.content_type == "application/problem+json", (path, body, problem)
    status, problem = await api.admin("PUT", f"/v1/chargers/{unique_id()}/connectors/1", TYPE2_22KW)
    assert status == 404 and problem["title"] == "Charger not found"
    _, listed = await api.admin("GET", f"/v1/chargers/{cp}/connectors")
    assert {k: listed["items"][0][k] for k in SPEC_FIELDS} == TYPE2_22KW


async def test_connectors_page_with_a_cursor(api):
    cp = unique_id()
    await send(api, *(ev.status(cp, n, "Available") for n in range(1, 6)))
    await connectors_when(api, cp, lambda items: len(items) == 5)
    seen, cursor = [], None
    while True:
        path = f"/v1/chargers/{cp}/connectors?limit=2" + (f"&cursor={cursor}" if cursor else "")
        status, body = await api.admin("GET", path)
        assert status == 200 and len(body["items"]) <= 2
        seen += [i["connectorId"] for i in body["items"]]
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert seen == [1, 2, 3, 4, 5]


async def test_unknown_charger_is_a_404_problem(api):
    cp = unique_id()
    for path in (f"/v1/chargers/{cp}", f"/v1/chargers/{cp}/connectors", f"/v1/chargers/{cp}/sessions"):
        status, body = await api.admin("GET", path)
        assert status == 404 and body["status"] == 404 and body["title"] == "Charger not found"
        assert api.last_response.content_type == "application/problem+json"


async def test_bad_list_parameters_are_400_problems(api):
    cp = unique_id()
    await send(api, ev.status(cp, 1, "Available"))
    await connectors_when(api, cp, lambda items: len(items) == 1)
    for query in ("limit=0", "limit=501", "limit=x", "cursor=garbage"):
        for what in ("connectors", "sessions"):
            status, body = await api.admin("GET", f"/v1/chargers/{cp}/{what}?{query}")
            assert status == 400 and body["errors"][0]["loc"][0] == "query", (query, body)


async def test_operator_routes_need_the_admin_token(api):
    assert (await api.anonymous("GET", f"/v1/chargers/{unique_id()}"))[0] == 401
    assert (await api.gateway("GET", f"/v1/sessions/{uuid.uuid4()}"))[0] == 401


async def test_samples_outside_a_transaction_and_command_acks_start_no_session(api, pg):
    cp = unique_id()
    outside = ev.sample(cp, 0, "1234", "2026-11-25T10:20:00Z")
    without_tx = {k: v for k, v in ev.sample(cp, 0, "1234", "2026-11-25T10:21:00Z").items() if k != "transactionId"}
    ack = ev.command_ack(cp, "uid-1") | {"ts": "2026-11-25T10:30:00Z"}
    await applied(pg, await send(api, ev.heartbeat(cp, ts="2026-11-25T10:00:00Z"), outside, without_tx, ack))
    charger = await charger_when(api, cp, lambda c: True)
    assert charger["lastSeenAt"] == "2026-11-25T10:21:00Z"  # a CommandAck is the commands service's business
    status, body = await api.admin("GET", f"/v1/chargers/{cp}/sessions")
    assert status == 200 and body == {"items": [], "nextCursor": None}


async def test_metrics_count_events_and_finalizations_without_ids(api, pg):
    cp = unique_id()
    await applied(pg, await send(api, ev.booted(cp), ev.started(cp, 1), ev.ended(cp, 1, meter_stop=10)))
    await eventually(lambda: _finalized(api, cp))
    status, text = await api.anonymous("GET", "/metrics")
    assert status == 200
    assert 'cpms_sessions_events_total{result="applied",type="ChargerBooted"}' in text
    assert 'cpms_sessions_finalized_total{energy_source="StopTransaction",kind="first"}' in text
    assert "cpms_sessions_handler_duration_seconds_bucket" in text
    assert cp not in text


async def _finalized(api, cp: str) -> bool:
    status, body = await api.admin("GET", f"/v1/chargers/{cp}/sessions")
    return status == 200 and bool(body["items"]) and body["items"][0]["status"] == "Finalized"
