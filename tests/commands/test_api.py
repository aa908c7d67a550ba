"""The operator's API: create (idempotent, optionally waiting), read, list; and every bad input."""
from __future__ import annotations

import asyncio

import pytest

from tests.commands.helpers import command, create, outcome, remote_start
from tests.support import eventually, unique_id


async def test_same_key_and_body_returns_the_command_and_calls_the_gateway_once(api, fake_gateway):
    body = remote_start()
    created = await create(api, body)
    status, again = await api.admin("POST", "/v1/commands", body)
    assert status == 200 and again["commandId"] == created["commandId"]
    await outcome(api, created["commandId"])
    status, later = await api.admin("POST", "/v1/commands", body)
    assert status == 200 and later["commandId"] == created["commandId"] and later["status"] == "Acked"
    assert len(fake_gateway.calls_for(body["idempotencyKey"])) == 1


async def test_concurrent_duplicates_make_one_command(api, fake_gateway):
    body = remote_start()
    answers = await asyncio.gather(*(api.admin("POST", "/v1/commands", body) for _ in range(5)))
    assert sorted(status for status, _ in answers) == [200, 200, 200, 200, 202]
    assert len({b["commandId"] for _, b in answers}) == 1
    await outcome(api, answers[0][1]["commandId"])
    assert len(fake_gateway.calls_for(body["idempotencyKey"])) == 1


async def test_same_key_with_another_body_is_409_and_changes_nothing(api, fake_gateway):
    body = remote_start()
    created = await create(api, body)
    await outcome(api, created["commandId"])
    for other in (
        {**body, "payload": {"idTag": "OTHER-TAG"}},
        {**body, "chargePointId": unique_id()},
        {**body, "type": "Reset", "payload": {"type": "Soft"}},
    ):
        status, problem = await api.admin("POST", "/v1/commands", other)
        assert status == 409 and problem["status"] == 409, problem
        assert api.last_response.content_type == "application/problem+json"
    assert len(fake_gateway.calls_for(body["idempotencyKey"])) == 1
    status, listed = await api.admin("GET", f"/v1/commands?chargePointId={body['chargePointId']}")
    assert [c["commandId"] for c in listed["items"]] == [created["commandId"]]


async def test_wait_answers_200_with_the_final_command(api, fake_gateway):
    fake_gateway.answer(200, {"commandId": "w-1", "response": {"status": "Accepted"}})
    status, done = await api.admin("POST", "/v1/commands?wait=10", remote_start())
    assert status == 200 and done["status"] == "Acked" and done["response"] == {"status": "Accepted"}


async def test_wait_answers_failures_too(api, fake_gateway):
    fake_gateway.answer(400, {"error": "bad idTag"})
    status, done = await api.admin("POST", "/v1/commands?wait=10", remote_start())
    assert status == 200 and done["status"] == "Failed" and "bad idTag" in done["error"]


async def test_wait_that_runs_out_answers_202_with_the_current_state(api, fake_gateway):
    fake_gateway.answer(200, {"commandId": "w-2", "response": {"status": "Accepted"}}, delay=2)
    status, current = await api.admin("POST", "/v1/commands?wait=0.3", remote_start())
    assert status == 202 and current["status"] in ("Queued", "Sent")
    assert (await outcome(api, current["commandId"]))["status"] == "Acked"


@pytest.mark.parametrize("wait", ["0", "-1", "31", "abc", "nan"])
async def test_bad_wait_is_400_and_creates_nothing(api, fake_gateway, wait):
    body = remote_start()
    status, problem = await api.admin("POST", f"/v1/commands?wait={wait}", body)
    assert status == 400 and problem["errors"][0]["loc"] == ["query", "wait"], problem
    assert (await api.admin("GET", f"/v1/commands?chargePointId={body['chargePointId']}"))[1]["items"] == []


INVALID = [
    ("unknown type", command("UnlockEverything", {"connectorId": 1}), ["type"]),
    ("a charger's action", command("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}), ["type"]),
    ("an action beyond OCPP 1.6's profiles", command("GetLog", {"logType": "DiagnosticsLog", "requestId": 1, "log": {"remoteLocation": "x"}}), ["type"]),
    ("idTag over 20", remote_start(id_tag="X" * 21), ["payload", "idTag"]),
    ("empty idTag", remote_start(id_tag=""), ["payload", "idTag"]),
    ("connectorId 0", remote_start(connectorId=0), ["payload", "connectorId"]),
    ("reset type", command("Reset", {"type": "Medium"}), ["payload", "type"]),
    ("config key over 50", command("ChangeConfiguration", {"key": "k" * 51, "value": "1"}), ["payload", "key"]),
    ("config value over 500", command("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "v" * 501}), ["payload", "value"]),
    ("config value not a string", command("ChangeConfiguration", {"key": "HeartbeatInterval", "value": 300}), ["payload", "value"]),
    ("transactionId as string", command("RemoteStopTransaction", {"transactionId": "12"}), ["payload", "transactionId"]),
    ("transactionId fractional", command("RemoteStopTransaction", {"transactionId": 1.5}), ["payload", "transactionId"]),
    ("transactionId missing", command("RemoteStopTransaction", {}), ["payload", "transactionId"]),
    ("unknown payload field", remote_start(chargingProfile={}), ["payload", "chargingProfile"]),
    ("no payload", {k: v for k, v in remote_start().items() if k != "payload"}, ["payload"]),
    ("no idempotencyKey", {k: v for k, v in remote_start().items() if k != "idempotencyKey"}, ["idempotencyKey"]),
    ("idempotencyKey too long", {**remote_start(), "idempotencyKey": "k" * 129}, ["idempotencyKey"]),
    ("bad chargePointId", {**remote_start(), "chargePointId": "has space"}, ["chargePointId"]),
]


@pytest.mark.parametrize(("case", "body", "loc"), INVALID, ids=[c[0] for c in INVALID])
async def test_invalid_commands_are_400_naming_the_field_and_change_nothing(api, fake_gateway, case, body, loc):
    status, problem = await api.admin("POST", "/v1/commands", body)
    assert status == 400, problem
    assert api.last_response.content_type == "application/problem+json"
    assert any(e["loc"][: len(loc)] == loc for e in problem["errors"]), problem["errors"]
    if " " not in body["chargePointId"]:
        assert (await api.admin("GET", f"/v1/commands?chargePointId={body['chargePointId']}"))[1]["items"] == []
    if 0 < len(body.get("idempotencyKey", "")) <= 128:
        # the key is still free: a valid command may use it
        valid = remote_start(key=body["idempotencyKey"])
        assert (await create(api, valid))["idempotencyKey"] == body["idempotencyKey"]


async def test_wrong_content_type_bad_json_and_no_token(api):
    status, _ = await api.admin("POST", "/v1/commands", data=b"type=Reset", headers={"Content-Type": "text/plain"})
    assert status == 415
    status, problem = await api.admin("POST", "/v1/commands", data=b"{not json", headers={"Content-Type": "application/json"})
    assert status == 400 and problem["status"] == 400
    assert (await api.anonymous("POST", "/v1/commands", remote_start()))[0] == 401
    assert (await api.anonymous("GET", "/v1/commands"))[0] == 401


async def test_unknown_command_is_404(api):
    for path in ("/v1/commands/00000000-0000-0000-0000-000000000000", "/v1/commands/not-a-uuid"):
        status, problem = await api.admin("GET", path)
        assert status == 404 and problem["status"] == 404


async def test_list_filters_and_pages_newest_first(api, fake_gateway):
    cp = unique_id()
    ids = [(await create(api, remote_start(cp)))["commandId"] for _ in range(3)]
    await create(api, remote_start())  # another charger's
    for command_id in ids:
        await outcome(api, command_id)
    status, first = await api.admin("GET", f"/v1/commands?chargePointId={cp}&limit=2")
    assert status == 200 and len(first["items"]) == 2 and first["nextCursor"]
    status, second = await api.admin("GET", f"/v1/commands?chargePointId={cp}&limit=2&cursor={first['nextCursor']}")
    assert status == 200 and second["nextCursor"] is None
    assert [c["commandId"] for c in first["items"] + second["items"]] == ids[::-1]
    status, acked = await api.admin("GET", f"/v1/commands?chargePointId={cp}&status=Acked")
    assert len(acked["items"]) == 3
    status, failed = await api.admin("GET", f"/v1/commands?chargePointId={cp}&status=Failed")
    assert failed == {"items": [], "nextCursor": None}


@pytest.mark.parametrize("query", ["status=Done", "limit=0", "limit=501", "cursor=garbage", "chargePointId=has%20space", "colour=red"])
async def test_bad_list_queries_are_400(api, query):
    status, problem = await api.admin("GET", f"/v1/commands?{query}")
    assert status == 400 and problem["errors"][0]["loc"][0] == "query", problem


async def _ack(api, cp: str, unique: str, ts: str = "2026-11-25T10:00:00Z") -> None:
    await api.send_events({"type": "CommandAck", "chargePointId": cp, "commandType": "RemoteStartTransaction",
                           "uniqueId": unique, "ts": ts})


async def test_command_ack_after_the_answer_links_to_the_command(api, fake_gateway):
    body = remote_start()
    unique = unique_id("uid")
    fake_gateway.answer(200, {"commandId": unique, "response": {"status": "Accepted"}})
    done = await outcome(api, (await create(api, body))["commandId"])
    assert done["ackedAt"] is None
    await _ack(api, body["chargePointId"], unique)

    async def linked():
        _, current = await api.admin("GET", f"/v1/commands/{done['commandId']}")
        return current if current["ackedAt"] else None

    current = await eventually(linked)
    assert current["ackedAt"] == "2026-11-25T10:00:00Z" and current["status"] == "Acked"


async def test_command_ack_before_the_answer_still_links(api, fake_gateway, pg):
    body = remote_start()
    unique = unique_id("uid")
    await _ack(api, body["chargePointId"], unique)
    await eventually(lambda: pg.fetchval("SELECT 1 FROM commands.acks WHERE unique_id = $1", unique))
    fake_gateway.answer(200, {"commandId": unique, "response": {"status": "Accepted"}})
    done = await outcome(api, (await create(api, body))["commandId"])
    assert done["gatewayCommandId"] == unique and done["ackedAt"] == "2026-11-25T10:00:00Z"


async def test_an_ack_of_another_charger_does_not_link(api, fake_gateway):
    body = remote_start()
    unique = unique_id("uid")
    await _ack(api, unique_id(), unique)  # same uniqueId, other charger
    fake_gateway.answer(200, {"commandId": unique, "response": {"status": "Accepted"}})
    done = await outcome(api, (await create(api, body))["commandId"])
    assert done["ackedAt"] is None
