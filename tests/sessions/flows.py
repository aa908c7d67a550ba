"""Helpers of the sessions tests: finding a charger's session through the API, waiting for the
consumers, delivering charger events behind ingest in a chosen order, and publishing billing's
domain messages on the test broker."""
from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import aio_pika

from services.ingest.intake import Accepted, ReceiveClock, accept_events
from shared import envelope
from shared.broker import Broker
from shared.config import Settings
from shared.consumer import decode
from shared.domain import DomainMessage, payload
from shared.jsonutil import dumps
from shared.topology import DOMAIN, EVENTS
from tests.ingest import gateway_events as ev
from tests.support import Api, eventually, unique_id

# What differs between two runs of the same events: ids and the wall-clock time of finalization.
RUN_SPECIFIC = ("sessionId", "chargePointId", "finalizedAt")


async def sessions_of(api: Api, cp: str) -> list[dict]:
    status, body = await api.admin("GET", f"/v1/chargers/{cp}/sessions?limit=500")
    return body["items"] if status == 200 else []


async def session_when(api: Api, cp: str, tx: int, condition: Callable[[dict], bool] = lambda s: True) -> dict:
    """The session of (cp, tx) once `condition` holds for it."""

    async def probe() -> dict | None:
        for item in await sessions_of(api, cp):
            if item["transactionId"] == tx and condition(item):
                return item
        return None

    return await eventually(probe)


def finalized(session: dict) -> bool:
    return session["status"] == "Finalized"


def comparable(session: dict) -> dict:
    return {k: v for k, v in session.items() if k not in RUN_SPECIFIC}


async def applied(pg, event_ids: list[str]) -> None:
    """Wait until the sessions consumer has taken every one of these events (its inbox has them)."""

    async def probe() -> bool:
        count = await pg.fetchval("SELECT count(*) FROM sessions.inbox WHERE message_id = ANY($1::text[])", list(set(event_ids)))
        return count == len(set(event_ids))

    await eventually(probe, timeout=30)


async def send(api: Api, *events: dict) -> list[str]:
    """Post events as the gateway does (one request each); returns their event ids."""
    ids = []
    for event in events:
        status, body = await api.gateway("POST", "/v1/gateway/events", event)
        assert status == 202, body
        ids.append(body["eventId"])
    return ids


def received(*events: dict) -> list[Accepted]:
    """The events as ingest stamps them when it receives them one request at a time, in this order
    (the reference gateway's: one charger's events one at a time, in the charger's order)."""
    clock = ReceiveClock()
    return [accept_events(event, clock)[0][0] for event in events]


async def deliver(settings: Settings, pg, events: list[Accepted]) -> None:
    """Hand events that ingest received on to the consumers in exactly this order (each confirmed
    before the next), as redelivery and competing consumers may, and wait until all are applied."""
    sentinel = received(ev.heartbeat(unique_id("SENTINEL")))[0]
    broker = Broker(settings.amqp_url, settings.amqp_prefix, publish_timeout=5)
    await broker.connect()
    try:
        for accepted in [*events, sentinel]:
            await broker.publish_envelope(EVENTS.key, envelope.EVENTS_ROUTING_KEY, [(accepted.event_id, accepted.encoded)])
    finally:
        await broker.close()
    # the last one, distinct from the others: once it is applied, everything before it in the queue is too
    await applied(pg, [sentinel.event_id])


class DomainPublisher:
    """Publishes domain messages on the test broker, as billing or ingest would."""

    def __init__(self, settings: Settings) -> None:
        self.broker = Broker(settings.amqp_url, settings.amqp_prefix, publish_timeout=5)

    async def __aenter__(self) -> DomainPublisher:
        await self.broker.connect()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.broker.close()

    async def publish(self, message: DomainMessage, *, routing_key: str | None = None) -> str:
        message_id = str(uuid.uuid4())
        await self.broker.publish(DOMAIN.key, routing_key or message.routing_key, dumps(payload(message)), message_id=message_id)
        return message_id


class DomainListener:
    """A temporary queue bound to the domain exchange: what the services published, as it arrives."""

    def __init__(self, settings: Settings, routing_key: str) -> None:
        self.settings, self.routing_key = settings, routing_key
        self.received: list[tuple[str, dict]] = []

    async def __aenter__(self) -> DomainListener:
        self.connection = await aio_pika.connect(self.settings.amqp_url)
        channel = await self.connection.channel()
        exchange = await channel.get_exchange(DOMAIN.name(self.settings.amqp_prefix))
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key=self.routing_key)
        await queue.consume(self._on_message, no_ack=True)
        return self

    async def _on_message(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        self.received.extend((m.message_id, m.body) for m in decode(message))

    def bodies_for(self, session_id: str) -> list[dict]:
        return [body for _, body in self.received if body.get("sessionId") == session_id]

    async def __aexit__(self, *exc: Any) -> None:
        await self.connection.close()
