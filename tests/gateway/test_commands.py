"""POST /v1/gateway/commands (CONTRACT sections 5 and 11): payloads checked by the OCPP 1.6
schemas (400 naming the field), the charger's CallResult (200) or CallError (422), 502 when it is
not connected; and several gateway processes acting as one: a command posted to one reaches the
charger connected to another."""
from __future__ import annotations

from typing import Any

import aiohttp

from tests.gateway.conftest import connected

KEY = "gateway-commands-key"


async def post_command(gateway, body: dict[str, Any], *, key: str | None = KEY) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{gateway.http_url}/v1/gateway/commands", json=body, headers=headers) as answer:
            return answer.status, await answer.json(content_type=None)


def command(cp: str, kind: str, payload: dict) -> dict:
    return {"type": kind, "chargePointId": cp, "idempotencyKey": f"k-{kind}", "payload": payload}


async def test_a_command_reaches_the_charger_and_its_answer_comes_back(make_gateway, registered):
    gateway = await make_gateway(gateway_api_key=KEY)
    cp, secret = await registered()
    async with connected(gateway, cp, secret) as charger:
        status, body = await post_command(gateway, command(cp, "Reset", {"type": "Soft"}))
        assert status == 200, body
        assert body["response"] == {"status": "Accepted"} and body["commandId"]
        assert charger.received == [("Reset", {"type": "Soft"})]

        charger.answers["Reset"] = "Rejected"
        assert (await post_command(gateway, command(cp, "Reset", {"type": "Hard"})))[1]["response"] == {"status": "Rejected"}

        # an action this charger does not implement: its CallError, final
        status, body = await post_command(gateway, command(cp, "UnlockConnector", {"connectorId": 1}))
        assert status == 422, body
        assert body["errorCode"] == "NotImplemented"


async def test_bad_commands_are_refused_naming_the_field(make_gateway, registered):
    gateway = await make_gateway(gateway_api_key=KEY)
    cp, secret = await registered()
    async with connected(gateway, cp, secret) as charger:
        status, body = await post_command(gateway, command(cp, "Reset", {"type": "Sideways"}))
        assert status == 400 and body["errors"][0]["loc"] == ["payload", "type"]
        status, body = await post_command(gateway, command(cp, "ChangeConfiguration", {"key": "k" * 51, "value": "1"}))
        assert status == 400 and body["errors"][0]["loc"] == ["payload", "key"]
        status, body = await post_command(gateway, command(cp, "BootNotification", {}))
        assert status == 400 and body["errors"][0]["loc"] == ["type"]
        assert (await post_command(gateway, command(cp, "Reset", {"type": "Soft"}), key="wrong"))[0] == 401
        assert (await post_command(gateway, command(cp, "Reset", {"type": "Soft"}), key=None))[0] == 401
        assert charger.received == []


async def test_a_charger_not_connected_is_a_502(gateway):
    status, body = await post_command(gateway, command("CP-nowhere", "Reset", {"type": "Soft"}))
    assert status == 502, body


async def test_a_command_posted_to_one_gateway_process_reaches_the_charger_on_another(make_gateway, registered):
    holding, other = await make_gateway(), await make_gateway()
    cp, secret = await registered()
    async with connected(holding, cp, secret) as charger:
        status, body = await post_command(other, command(cp, "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "60"}))
        assert status == 200, body
        assert body["response"] == {"status": "Accepted"}
        assert charger.received == [("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "60"})]
        status, body = await post_command(other, command(cp, "UnlockConnector", {"connectorId": 1}))
        assert status == 422 and body["errorCode"] == "NotImplemented"
    # gone from both: 502 from either
    for gateway in (holding, other):
        assert (await post_command(gateway, command(cp, "Reset", {"type": "Soft"})))[0] == 502


async def test_a_charger_that_moves_to_another_process_is_taken_over(make_gateway, registered):
    first, second = await make_gateway(), await make_gateway()
    cp, secret = await registered()
    async with connected(first, cp, secret) as old:
        async with connected(second, cp, secret) as new:
            await old._connection.wait_closed()  # replaced across processes
            status, body = await post_command(first, command(cp, "Reset", {"type": "Soft"}))
            assert status == 200, body
            assert new.received == [("Reset", {"type": "Soft"})] and old.received == []
