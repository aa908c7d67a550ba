"""Delivery to the gateway: acked, retried, refused, unknown, expired; each attempt counted."""
from __future__ import annotations

import uuid
from datetime import timedelta

from tests.commands.helpers import create, gateway_body, outcome, remote_start
from tests.support import eventually, unique_id


async def test_remote_start_is_acked_with_the_chargers_response(api, fake_gateway):
    body = remote_start(connectorId=1)
    fake_gateway.answer(200, {"commandId": "ocpp-unique-1", "response": {"status": "Accepted"}})
    created = await create(api, body)
    assert created["status"] == "Queued" and created["attempts"] == 0 and created["response"] is None
    assert created["type"] == body["type"] and created["payload"] == {"idTag": "TAG-0001", "connectorId": 1}

    done = await outcome(api, created["commandId"])
    assert done["status"] == "Acked" and done["error"] is None
    assert done["response"] == {"status": "Accepted"}
    assert done["attempts"] == 1 and done["gatewayCommandId"] == "ocpp-unique-1"
    # exactly the reference gateway's request body, once
    assert fake_gateway.calls_for(body["idempotencyKey"]) == [gateway_body(body)]


async def test_a_refusing_charger_is_still_acked_with_its_answer(api, fake_gateway):
    body = {"type": "Reset", "chargePointId": unique_id(), "idempotencyKey": unique_id("key"), "payload": {"type": "Hard"}}
    fake_gateway.answer(200, {"commandId": "u-2", "response": {"status": "Rejected"}})
    done = await outcome(api, (await create(api, body))["commandId"])
    assert (done["status"], done["response"]) == ("Acked", {"status": "Rejected"})


async def test_retries_through_502_503_504_then_acked(api, fake_gateway):
    body = remote_start()
    fake_gateway.answer(502, {"error": "charger not connected"})
    fake_gateway.answer(503, {"error": "busy"})
    fake_gateway.answer(504, {"error": "charger did not answer"})
    fake_gateway.answer(200, {"commandId": "u-3", "response": {"status": "Accepted"}})
    done = await outcome(api, (await create(api, body))["commandId"])
    assert done["status"] == "Acked" and done["attempts"] == 4
    assert len(fake_gateway.calls_for(body["idempotencyKey"])) == 4


async def test_400_fails_at_once_with_the_gateways_error(api, fake_gateway):
    body = remote_start()
    fake_gateway.answer(400, {"error": "unknown charge point"})
    done = await outcome(api, (await create(api, body))["commandId"])
    assert done["status"] == "Failed" and done["attempts"] == 1
    assert "400" in done["error"] and "unknown charge point" in done["error"]
    assert len(fake_gateway.calls_for(body["idempotencyKey"])) == 1


async def test_500_is_an_unknown_outcome_and_not_sent_again(api, fake_gateway):
    body = remote_start()
    fake_gateway.answer(500, {"error": "panic"})
    done = await outcome(api, (await create(api, body))["commandId"])
    assert done["status"] == "Failed" and done["error"].startswith("outcome unknown")
    assert done["attempts"] == 1 and len(fake_gateway.calls_for(body["idempotencyKey"])) == 1


async def test_timeout_fails_as_outcome_unknown_after_one_attempt(make_api, fake_gateway):
    api = await make_api(services=["commands"], gateway_timeout_seconds=0.5)
    body = remote_start()
    fake_gateway.answer(200, {"commandId": "late", "response": {"status": "Accepted"}}, delay=2)
    done = await outcome(api, (await create(api, body))["commandId"])
    assert done["status"] == "Failed" and "outcome unknown" in done["error"]
    assert done["attempts"] == 1 and done["response"] is None
    assert len(fake_gateway.calls_for(body["idempotencyKey"])) == 1


async def test_unreachable_gateway_is_retried_until_the_time_to_live_runs_out(make_api):
    api = await make_api(services=["commands"], command_ttl_seconds=2, gateway_base_url="http://127.0.0.1:1")
    created = await create(api, remote_start())
    done = await outcome(api, created["commandId"])
    assert done["status"] == "Failed" and done["attempts"] >= 2
    assert "time to live" in done["error"] and "unreachable" in done["error"]


async def test_gateway_key_is_sent_as_bearer_when_set(make_api, fake_gateway):
    api = await make_api(services=["commands"], gateway_api_key="gw-key-123")
    body = remote_start()
    done = await outcome(api, (await create(api, body))["commandId"])
    assert done["status"] == "Acked"
    index = next(i for i, c in enumerate(fake_gateway.calls) if c.get("idempotencyKey") == body["idempotencyKey"])
    assert fake_gateway.auth_headers[index] == "Bearer gw-key-123"


async def test_no_authorization_header_without_a_gateway_key(api, fake_gateway, settings):
    assert settings.gateway_api_key is None
    body = remote_start()
    await outcome(api, (await create(api, body))["commandId"])
    index = next(i for i, c in enumerate(fake_gateway.calls) if c.get("idempotencyKey") == body["idempotencyKey"])
    assert fake_gateway.auth_headers[index] is None


async def _insert_command(pg, *, status: str, attempts: int, due_ago: float, lease_ago: float | None, body: dict) -> str:
    """Leave a command as a process that died would have left it."""
    command_id = uuid.uuid4()
    await pg.execute(
        """
        INSERT INTO commands.commands (command_id, type, charge_point_id, idempotency_key, fingerprint, payload, status,
            attempts, due_at, lease_until, lease_owner, expires_at, created_at)
        VALUES ($1, $2, $3, $4, 'x', $5::jsonb, $6, $7, now() - $8::interval,
                now() - $9::interval, CASE WHEN $9::interval IS NULL THEN NULL ELSE gen_random_uuid() END,
                now() + interval '100 seconds', now() - interval '20 seconds')
        """,
        command_id, body["type"], body["chargePointId"], body["idempotencyKey"], body["payload"], status, attempts,
        timedelta(seconds=due_ago), None if lease_ago is None else timedelta(seconds=lease_ago),
    )
    if attempts:
        await pg.execute("INSERT INTO commands.attempts (command_id, attempt, started_at) VALUES ($1, 1, now() - interval '19 seconds')",
                         command_id)
    return str(command_id)


async def test_a_send_cut_short_by_a_crash_is_never_sent_again(api, pg, fake_gateway):
    body = remote_start()
    command_id = await _insert_command(pg, status="Sent", attempts=1, due_ago=20, lease_ago=1, body=body)
    done = await outcome(api, command_id)
    assert done["status"] == "Failed" and done["error"].startswith("outcome unknown")
    assert done["attempts"] == 1 and fake_gateway.calls_for(body["idempotencyKey"]) == []
    assert await pg.fetchval("SELECT result FROM commands.attempts WHERE command_id = $1", uuid.UUID(command_id)) == "unknown"


async def test_a_due_command_left_behind_by_a_crash_is_delivered_once(api, pg, fake_gateway):
    body = remote_start()
    command_id = await _insert_command(pg, status="Queued", attempts=0, due_ago=15, lease_ago=None, body=body)
    done = await outcome(api, command_id)
    assert done["status"] == "Acked" and done["attempts"] == 1
    assert fake_gateway.calls_for(body["idempotencyKey"]) == [gateway_body(body)]


async def test_every_attempt_is_recorded(api, pg, fake_gateway):
    body = remote_start()
    fake_gateway.answer(502, {"error": "charger offline"})
    done = await outcome(api, (await create(api, body))["commandId"])
    rows = await pg.fetch("SELECT attempt, result, http_status, finished_at FROM commands.attempts WHERE command_id = $1 ORDER BY attempt",
                          uuid.UUID(done["commandId"]))
    assert [(r["attempt"], r["result"], r["http_status"]) for r in rows] == [(1, "unavailable", 502), (2, "acked", 200)]
    assert all(r["finished_at"] is not None for r in rows)


async def test_metrics_count_outcomes_attempts_and_waiting(api, fake_gateway):
    body = remote_start()
    done = await outcome(api, (await create(api, body))["commandId"])

    async def scraped():
        status, text = await api.anonymous("GET", "/metrics")
        return text if 'cpms_commands_total{status="Acked",type="RemoteStartTransaction"}' in text else None

    text = await eventually(scraped)
    assert 'cpms_commands_dispatch_attempts_total{result="acked"}' in text
    assert "cpms_commands_dispatch_duration_seconds_bucket" in text
    assert "cpms_commands_waiting " in text
    assert done["commandId"] not in text and body["chargePointId"] not in text  # no ids as label values
