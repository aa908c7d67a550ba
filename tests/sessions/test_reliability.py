"""A crash between commit and ack, and a broker lost between commit and publish, lose nothing and
count nothing twice."""
from __future__ import annotations

import functools
import uuid

import asyncpg
from prometheus_client import REGISTRY

from services.ingest.intake import ReceiveClock, accept_events
from services.sessions import consumers
from shared import db
from shared.app import outbox_relay
from shared.broker import Broker, PublishFailed
from shared.consumer import Consumer
from shared.jsonutil import dumps
from shared.topology import EVENTS, SESSIONS_CHARGER_EVENTS
from tests.conftest import delete_broker_objects
from tests.ingest import gateway_events as ev
from tests.sessions.flows import DomainListener, applied, finalized, send, session_when
from tests.support import eventually, unique_id

START, MID, END = "2026-11-25T10:01:00Z", "2026-11-25T10:30:00Z", "2026-11-25T11:00:00Z"


def _metric(name: str, labels: dict) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_message_redelivered_after_a_crash_before_its_ack_changes_nothing(api, settings, database_url, pg):
    cp = unique_id()
    await applied(pg, await send(api, ev.started(cp, 1, ts=START), ev.ended(cp, 1, ts=END)))
    assert (await session_when(api, cp, 1, finalized))["energySource"] == "Missing"

    # A second consumer of the sessions schema, on its own queue, that "crashes" right after its
    # first commit: the message is committed with its inbox row but never acked, so the broker
    # delivers it again.
    prefix = f"{settings.amqp_prefix}-crash-{uuid.uuid4().hex[:6]}"
    broker = Broker(settings.amqp_url, prefix, publish_timeout=5)
    await broker.connect()
    pool = await db.create_pool(database_url, max_size=2)
    crashes = []

    def crash_after_commit(_result) -> None:
        if not crashes:
            crashes.append(True)
            raise RuntimeError("process died after commit, before ack")

    consumer = Consumer(broker=broker, pool=pool, queue=SESSIONS_CHARGER_EVENTS, schema="sessions",
                        handler=functools.partial(consumers.apply_charger_events, settings=settings), prefetch=10, batch_size=10, after_commit=crash_after_commit)
    queue = {"queue": SESSIONS_CHARGER_EVENTS.name(prefix)}
    try:
        await consumer.start()
        [event], _ = accept_events(ev.sample(cp, 1, "700", MID, measurand="Energy.Active.Import.Interval"), ReceiveClock())
        await broker.publish(EVENTS.key, event.routing_key, dumps(event.body), message_id=event.event_id)
        await eventually(lambda: _is_at_least(_metric("cpms_consumer_messages_total", queue | {"result": "duplicate"}), 1))
    finally:
        await consumer.stop()
        await broker.close()
        await pool.close()
        await delete_broker_objects(prefix)

    assert crashes and _metric("cpms_consumer_redeliveries_total", queue) >= 1
    session = await session_when(api, cp, 1, finalized)
    assert (session["energyWh"], session["energySource"]) == (700, "MeterValues.Interval")
    stored = await pg.fetchval("SELECT count(*) FROM sessions.meter_samples WHERE session_id = $1", uuid.UUID(session["sessionId"]))
    assert stored == 1


async def _is_at_least(value: float, minimum: float) -> bool:
    return value >= minimum


async def test_session_finalized_is_published_exactly_once_when_the_broker_drops_between_commit_and_publish(api, settings, pg):
    relay = outbox_relay(api.client.server.app, "sessions")
    working = relay.broker
    lost = Broker(settings.amqp_url, settings.amqp_prefix, publish_timeout=1)
    await lost.connect()
    await lost.close()  # this relay's connection is gone: every publish fails
    cp, sentinel_cp = unique_id(), unique_id()
    async with DomainListener(settings, "session.finalized") as listener:
        relay.broker = lost
        try:
            session = await _finalized_session(api, cp)
            assert await _outbox_rows(pg, session["sessionId"]) == 1  # committed with the session
            try:
                await relay.relay_once()
                raise AssertionError("publishing through a lost connection must fail")
            except PublishFailed:
                pass
            assert await _outbox_rows(pg, session["sessionId"]) == 1  # still waiting, nothing lost
            assert listener.bodies_for(session["sessionId"]) == []
        finally:
            relay.broker = working
        relay.wake()
        await eventually(lambda: _is_at_least(len(listener.bodies_for(session["sessionId"])), 1))
        # the outbox publishes in order: once a later finalization has arrived, any duplicate would have too
        sentinel = await _finalized_session(api, sentinel_cp)
        await eventually(lambda: _is_at_least(len(listener.bodies_for(sentinel["sessionId"])), 1))
        [published] = listener.bodies_for(session["sessionId"])
    assert published["revision"] == 1 and published["energyWh"] == "500" and published["energySource"] == "StopTransaction"
    assert await _outbox_rows(pg, session["sessionId"]) == 0


async def _finalized_session(api, cp: str) -> dict:
    await send(api, ev.started(cp, 1, meter_start=100, ts=START), ev.ended(cp, 1, meter_stop=600, ts=END))
    return await session_when(api, cp, 1, finalized)


async def _outbox_rows(pg: asyncpg.Connection, session_id: str) -> int:
    return await pg.fetchval("SELECT count(*) FROM sessions.outbox WHERE body->>'sessionId' = $1", session_id)
