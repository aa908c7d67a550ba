"""Event intake: POST /v1/gateway/events, single and batch, and the raw archive."""
from __future__ import annotations

import pytest

from tests.ingest import gateway_events as ev
from tests.support import eventually, unique_id


async def archived(pg, cp: str) -> list:
    return await pg.fetch("SELECT event_id, type, body FROM ingest.events WHERE charge_point_id = $1 ORDER BY ts, event_id", cp)


EVERY_TYPE = [
    lambda cp: ev.booted(cp),
    lambda cp: ev.heartbeat(cp),
    lambda cp: ev.status(cp, 0, "Available"),
    lambda cp: ev.status(cp, 1, "Faulted", error="GroundFailure"),
    lambda cp: ev.started(cp, 7),  # meterStartWh omitted: it was 0
    lambda cp: ev.started(cp, 8, meter_start=1200),
    lambda cp: ev.sample(cp, 7, "12.345", "2026-11-25T10:30:00Z", unit="kWh"),
    lambda cp: {"type": "MeterSample", "chargePointId": cp, "transactionId": 0, "samples": [{"value": "230.1", "measurand": "Voltage", "unit": "V", "phase": "L1", "location": "Outlet"}]},
    lambda cp: ev.ended(cp, 7, meter_stop=13345),
    lambda cp: ev.ended(cp, 9),  # meterStopWh omitted
    lambda cp: ev.command_ack(cp, "4f1c"),
]


@pytest.mark.parametrize("make_event", EVERY_TYPE)
async def test_every_event_type_in_the_gateway_json_is_accepted_and_archived(api, pg, make_event):
    cp = unique_id()
    event = make_event(cp)
    status, body = await api.gateway("POST", "/v1/gateway/events", event)
    assert status == 202, body
    assert body["accepted"] is True and body["type"] == event["type"] and body["eventId"].startswith("sha256:")
    rows = await eventually(lambda: archived(pg, cp))
    assert [r["event_id"] for r in rows] == [body["eventId"]]
    stored = rows[0]["body"]
    assert stored["type"] == event["type"] and stored["chargePointId"] == cp
    assert stored["effectiveTs"].endswith("Z") and stored["receivedAt"].endswith("Z")
    assert {k: v for k, v in stored.items() if k in event} == event  # as sent


async def test_an_event_without_ts_gets_the_time_received(api, pg):
    cp = unique_id()
    status, body = await api.gateway("POST", "/v1/gateway/events", {"type": "ChargerHeartbeat", "chargePointId": cp})
    assert status == 202
    rows = await eventually(lambda: archived(pg, cp))
    assert "ts" not in rows[0]["body"]
    assert rows[0]["body"]["effectiveTs"] == rows[0]["body"]["receivedAt"]


async def test_a_sent_event_id_is_the_idempotency_key(api, pg):
    cp = unique_id()
    event = {**ev.heartbeat(cp), "eventId": "gw-42"}
    assert (await api.gateway("POST", "/v1/gateway/events", event))[1]["eventId"] == "gw-42"


async def test_unknown_type_is_accepted_archived_and_counted(api, pg):
    cp = unique_id()
    event = {"type": "FirmwareStatusNotification", "chargePointId": cp, "ts": "2026-11-25T10:00:00Z", "status": "Installed"}
    status, body = await api.gateway("POST", "/v1/gateway/events", event)
    assert status == 202 and body["type"] == "FirmwareStatusNotification"
    rows = await eventually(lambda: archived(pg, cp))
    assert rows[0]["body"]["status"] == "Installed"  # kept as it came
    _, metrics = await api.anonymous("GET", "/metrics")
    assert 'cpms_ingest_events_total{result="accepted",type="unknown"}' in metrics


async def test_the_same_event_twice_is_archived_once(api, pg):
    cp = unique_id()
    event = ev.started(cp, 3, meter_start=10)
    first = await api.gateway("POST", "/v1/gateway/events", event)
    second = await api.gateway("POST", "/v1/gateway/events", dict(reversed(list(event.items()))))  # same JSON, other key order
    assert first[1]["eventId"] == second[1]["eventId"]
    await eventually(lambda: archived(pg, cp))
    await api.gateway("POST", "/v1/gateway/events", [ev.heartbeat(cp), event])  # and once more in a batch
    rows = await eventually(lambda: _count_is(pg, cp, 2))
    assert sorted(r["type"] for r in rows) == ["ChargerHeartbeat", "TransactionStarted"]


async def _count_is(pg, cp: str, n: int):
    rows = await archived(pg, cp)
    return rows if len(rows) == n else None


async def test_batch_answers_counts_and_ids_in_order(api, pg):
    cp = unique_id()
    events = [ev.booted(cp), ev.status(cp, 1, "Available"), ev.booted(cp), ev.heartbeat(cp)]
    status, body = await api.gateway("POST", "/v1/gateway/events", events)
    assert status == 202, body
    assert body["accepted"] == 3 and body["duplicates"] == 1
    assert len(body["eventIds"]) == 4 and body["eventIds"][0] == body["eventIds"][2]
    rows = await eventually(lambda: _count_is(pg, cp, 3))
    assert {r["event_id"] for r in rows} == set(body["eventIds"])


# What CONTRACT section 1 refuses: an event that cannot be attributed, or that the reference
# gateway could not have sent. Everything else is taken (tests/ingest/test_lossless.py).
INVALID = [
    ({"type": "ConnectorStatusChanged", "chargePointId": "X", "connectorId": -1, "status": "Available"}, ["connectorId"]),
    ({"type": "ConnectorStatusChanged", "chargePointId": "X", "connectorId": 2**31, "status": "Available"}, ["connectorId"]),
    ({"type": "ConnectorStatusChanged", "chargePointId": "X", "connectorId": True, "status": "Available"}, ["connectorId"]),
    ({"type": "TransactionStarted", "chargePointId": "X", "connectorId": 1}, ["transactionId"]),
    ({"type": "TransactionStarted", "chargePointId": "X", "connectorId": 1, "transactionId": "abc"}, ["transactionId"]),
    ({"type": "TransactionStarted", "chargePointId": "X", "connectorId": 1, "transactionId": 2**31}, ["transactionId"]),
    ({"type": "TransactionStarted", "chargePointId": "X", "connectorId": 1, "transactionId": 1, "meterStartWh": -5}, ["meterStartWh"]),
    ({"type": "TransactionStarted", "chargePointId": "X", "connectorId": 1, "transactionId": 1, "meterStartWh": 1.5}, ["meterStartWh"]),
    ({"type": "MeterSample", "chargePointId": "X", "transactionId": 1, "samples": {"value": "1"}}, ["samples"]),
    ({"type": "TransactionEnded", "chargePointId": "X"}, ["transactionId"]),
    ({"type": "TransactionEnded", "chargePointId": "X", "transactionId": 1, "meterStopWh": "100"}, ["meterStopWh"]),
    ({"type": "ChargerHeartbeat", "chargePointId": "X", "ts": 1795600000}, ["ts"]),  # epoch number
    ({"type": "ChargerHeartbeat"}, ["chargePointId"]),
    ({"type": "ChargerHeartbeat", "chargePointId": ""}, ["chargePointId"]),
    ({"type": "ChargerHeartbeat", "chargePointId": 42}, ["chargePointId"]),
    ({"type": "ChargerHeartbeat", "chargePointId": "X" * 256}, ["chargePointId"]),
    ({"type": "ChargerHeartbeat", "chargePointId": "X", "eventId": 7}, ["eventId"]),
    ({"chargePointId": "X"}, ["type"]),
    ({"type": ["ChargerHeartbeat"], "chargePointId": "X"}, ["type"]),
]


@pytest.mark.parametrize(("event", "loc"), INVALID)
async def test_invalid_event_is_refused_naming_the_field(api, event, loc):
    status, body = await api.gateway("POST", "/v1/gateway/events", event)
    assert status == 400
    assert api.last_response.content_type == "application/problem+json"
    assert body["status"] == 400 and body["title"]
    assert loc in [e["loc"] for e in body["errors"]], body["errors"]


async def test_a_batch_with_one_bad_event_publishes_nothing(api, pg):
    cp = unique_id()
    good = [ev.booted(cp), ev.heartbeat(cp)]
    status, body = await api.gateway("POST", "/v1/gateway/events", [*good, {"type": "TransactionEnded", "chargePointId": cp}])
    assert status == 400
    assert [2, "transactionId"] in [e["loc"] for e in body["errors"]]
    # a later, valid event of the same charger arrives; the refused ones never do
    await api.gateway("POST", "/v1/gateway/events", ev.status(cp, 1, "Available"))
    rows = await eventually(lambda: archived(pg, cp))
    assert [r["type"] for r in rows] == ["ConnectorStatusChanged"]


@pytest.mark.parametrize(("body", "content_type", "expected"), [
    (b"{not json", "application/json", 400),
    (b"[]", "application/json", 400),
    (b"42", "application/json", 400),
    (b'{"type": "ChargerHeartbeat", "chargePointId": "X"}', "text/plain", 415),
])
async def test_malformed_bodies(api, body, content_type, expected):
    status, problem = await api.gateway("POST", "/v1/gateway/events", data=body, headers={"Content-Type": content_type})
    assert status == expected and problem["status"] == expected


async def test_a_batch_over_1000_events_is_refused(api):
    cp = unique_id()
    status, body = await api.gateway("POST", "/v1/gateway/events", [ev.heartbeat(cp)] * 1001)
    assert status == 400 and "1000" in body["detail"]


async def test_a_body_over_the_limit_is_413(api, settings):
    cp = unique_id()
    padding = "x" * settings.max_body_bytes
    status, body = await api.gateway("POST", "/v1/gateway/events", {"type": "Heartbeat", "chargePointId": cp, "pad": padding})
    assert status == 413 and body["status"] == 413
    assert api.last_response.content_type == "application/problem+json"


async def test_unknown_route_is_a_404_problem(api):
    status, body = await api.admin("GET", "/v1/no-such-thing")
    assert status == 404 and body["status"] == 404
    assert api.last_response.content_type == "application/problem+json"
