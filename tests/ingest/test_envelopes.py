"""Envelopes: requests that arrive together are published as one message, and consumers still
apply, de-duplicate and dead-letter every event on its own."""
from __future__ import annotations

import asyncio
import uuid

import aio_pika
import orjson
from prometheus_client import REGISTRY

from shared import envelope
from shared.app import SETTINGS
from shared.broker import Broker
from shared.topology import EVENTS, INGEST_ARCHIVE, SESSIONS_CHARGER_EVENTS
from tests.ingest import gateway_events as ev
from tests.support import eventually, unique_id


def _envelopes() -> tuple[float, float]:
    """(messages published, events in them) so far, from the ingest histogram."""
    return (REGISTRY.get_sample_value("cpms_ingest_envelope_events_count") or 0.0,
            REGISTRY.get_sample_value("cpms_ingest_envelope_events_sum") or 0.0)


async def test_concurrent_requests_share_envelopes_and_every_event_is_applied_once(api, pg):
    cp = unique_id("ENV")
    events = [ev.booted(cp)] + [ev.sample(cp, 0, str(1000 + i), f"2026-11-25T10:{i // 60:02d}:{i % 60:02d}Z") for i in range(63)]
    messages_before, events_before = _envelopes()

    answers = await asyncio.gather(*(api.gateway("POST", "/v1/gateway/events", e) for e in events))

    assert all(status == 202 for status, _ in answers)
    event_ids = [body["eventId"] for _, body in answers]
    messages_after, events_after = _envelopes()
    assert events_after - events_before == 64
    assert messages_after - messages_before < 64  # concurrent requests went out together
    await eventually(lambda: pg.fetchval("SELECT count(*) = 64 FROM sessions.inbox WHERE message_id = ANY($1::text[])", event_ids))
    await eventually(lambda: pg.fetchval("SELECT count(*) = 64 FROM ingest.events WHERE event_id = ANY($1::text[])", event_ids))


async def test_a_poison_event_in_an_envelope_is_dead_lettered_alone(make_api, connect_db):
    api = await make_api()
    pg = await connect_db(api)
    settings = api.client.server.app[SETTINGS]
    cp = unique_id("ENVPOISON")
    good = [ev.booted(cp) | {"eventId": f"good-{uuid.uuid4()}", "receivedAt": "2026-11-25T10:00:00Z"},
            ev.status(cp, 1, "Preparing") | {"eventId": f"good-{uuid.uuid4()}", "receivedAt": "2026-11-25T10:00:00Z"}]
    poison = ev.sample(cp, 1, "100", "2026-11-25T10:00:20Z") | {
        "transactionId": "not-a-number", "eventId": f"poison-{uuid.uuid4()}", "receivedAt": "2026-11-25T10:00:00Z"}
    broker = Broker(settings.amqp_url, settings.amqp_prefix, publish_timeout=5)
    await broker.connect()
    try:
        await broker.publish_envelope(EVENTS.key, envelope.EVENTS_ROUTING_KEY,
                                      [(e["eventId"], orjson.dumps(e)) for e in (good[0], poison, good[1])])
        await broker.publish(EVENTS.key, envelope.EVENTS_ROUTING_KEY, b'{"messages": "not a list"}',
                             message_id="broken-envelope", content_type=envelope.CONTENT_TYPE)
    finally:
        await broker.close()

    # the good events of the envelope are applied: the charger and its connector exist
    async def connectors():
        status, body = await api.admin("GET", f"/v1/chargers/{cp}/connectors")
        return body["items"] if status == 200 else None

    assert [c["status"] for c in await eventually(connectors)] == ["Preparing"]
    # the poison event alone is in the sessions DLQ, as a message of its own, with the reason
    dead = await _dead_letters(settings, SESSIONS_CHARGER_EVENTS.dlq_name(settings.amqp_prefix), want=2)
    by_id = {m.message_id: m for m in dead}
    assert set(by_id) == {poison["eventId"], "broken-envelope"}
    assert orjson.loads(by_id[poison["eventId"]].body) == poison
    assert "transactionId" in str(by_id[poison["eventId"]].headers["x-cpms-error"])
    assert "envelope" in str(by_id["broken-envelope"].headers["x-cpms-error"])
    assert await pg.fetchval("SELECT count(*) FROM sessions.sessions WHERE charge_point_id = $1", cp) == 0
    # the archive keeps every event as it came, poison included; the broken envelope is dead-lettered there too
    await eventually(lambda: pg.fetchval("SELECT count(*) = 3 FROM ingest.events WHERE charge_point_id = $1", cp))
    archive_dead = await _dead_letters(settings, INGEST_ARCHIVE.dlq_name(settings.amqp_prefix), want=1)
    assert [m.message_id for m in archive_dead] == ["broken-envelope"]


async def _dead_letters(settings, dlq: str, *, want: int) -> list[aio_pika.abc.AbstractIncomingMessage]:
    found: list = []
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        queue = await (await connection.channel()).declare_queue(dlq, passive=True)

        async def probe():
            while (message := await queue.get(no_ack=True, fail=False)) is not None:
                found.append(message)
            return len(found) >= want

        await eventually(probe, timeout=30)
    return found
