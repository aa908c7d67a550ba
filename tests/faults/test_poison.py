"""Poison messages: valid JSON that a handler can never apply. Each lands in its queue's DLQ with
the reason in `x-cpms-error`, and the messages behind it are still applied."""
from __future__ import annotations

import uuid

import aio_pika
import pytest

from shared.app import SETTINGS
from shared.broker import Broker
from shared.jsonutil import dumps
from shared.topology import BILLING_SESSIONS, DOMAIN, EVENTS, SESSIONS_CHARGER_EVENTS
from tests.faults.load import Load, verify_exactly_once
from tests.support import eventually, unique_id

pytestmark = pytest.mark.faults


async def test_poison_messages_are_dead_lettered_with_their_reason_and_block_nothing(make_api, connect_db):
    api = await make_api()
    pg = await connect_db(api)
    settings = api.client.server.app[SETTINGS]
    cp = unique_id("POISON")
    wrong_type = {  # what ingest would refuse, published behind its back: transactionId is no integer
        "type": "MeterSample", "chargePointId": cp, "ts": "2026-11-25T10:00:00Z", "eventId": f"poison-{uuid.uuid4()}",
        "receivedAt": "2026-11-25T10:00:00Z", "transactionId": "not-a-number", "connectorId": 1,
        "samples": [{"value": "100", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}],
    }
    no_energy_number = {  # a session.finalized whose energy is no number
        "sessionId": str(uuid.uuid4()), "chargePointId": cp, "connectorId": 1, "transactionId": 1,
        "startedAt": "2026-11-25T10:00:00Z", "endedAt": "2026-11-25T11:00:00Z", "energyWh": "lots",
        "energySource": "StopTransaction", "isEstimated": False, "finalizedAt": "2026-11-25T11:00:01Z", "revision": 1,
    }
    load = Load(chargers=10)
    await load.prepare(api)
    broker = Broker(settings.amqp_url, settings.amqp_prefix, publish_timeout=5)
    await broker.connect()
    try:
        await broker.publish(EVENTS.key, "charger.MeterSample", dumps(wrong_type), message_id=wrong_type["eventId"])
        finalized_id = str(uuid.uuid4())
        await broker.publish(DOMAIN.key, "session.finalized", dumps(no_energy_number), message_id=finalized_id)
        await load.run(api, concurrency=4)  # good messages behind the poison ones
    finally:
        await broker.close()

    figures = await verify_exactly_once(api, pg, load)
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        sessions_dead = await _dead_letter(channel, SESSIONS_CHARGER_EVENTS.dlq_name(settings.amqp_prefix), wrong_type["eventId"])
        billing_dead = await _dead_letter(channel, BILLING_SESSIONS.dlq_name(settings.amqp_prefix), finalized_id)

    for dead, body in ((sessions_dead, wrong_type), (billing_dead, no_energy_number)):
        assert dead.body == dumps(body)  # the message as it was, for an operator to inspect or replay
        assert dead.headers["x-cpms-error"] and "x-cpms-dead-lettered-at" in dead.headers
    assert "transactionId" in str(sessions_dead.headers["x-cpms-error"])
    assert "energyWh" in str(billing_dead.headers["x-cpms-error"])
    assert sessions_dead.headers["x-cpms-queue"] == SESSIONS_CHARGER_EVENTS.name(settings.amqp_prefix)
    # the poison changed nothing: no session for its charger, no price for its session
    assert (await api.admin("GET", f"/v1/chargers/{cp}/sessions"))[0] == 404  # not even the charger was recorded
    assert await pg.fetchval("SELECT count(*) FROM sessions.sessions WHERE charge_point_id = $1", cp) == 0
    assert await pg.fetchval("SELECT count(*) FROM billing.session_prices WHERE session_id = $1",
                             uuid.UUID(no_energy_number["sessionId"])) == 0
    print(f"poison: sessions DLQ reason {sessions_dead.headers['x-cpms-error']!r}; "
          f"billing DLQ reason {billing_dead.headers['x-cpms-error']!r}; load behind them {figures}")


async def _dead_letter(channel, dlq: str, message_id: str) -> aio_pika.abc.AbstractIncomingMessage:
    """The dead-lettered message with this id (the DLQ is this test's own)."""
    queue = await channel.declare_queue(dlq, passive=True)
    found: list = []

    async def probe():
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            if message.message_id == message_id:
                found.append(message)
        return found[0] if found else None

    return await eventually(probe, timeout=30)
