"""The RabbitMQ connection: topology on connect, confirmed persistent publishing, dead-lettering."""
from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection

from shared import envelope, metrics
from shared.topology import DEAD_LETTER, EXCHANGES, QUEUES, Queue, declare_topology

log = logging.getLogger(__name__)


async def close_quietly(closable: AbstractChannel | AbstractRobustConnection | None, what: str) -> None:
    """Close a broker channel or connection within 5 s; one already gone (the broker away) is
    only logged, as `what` close failed."""
    if closable is None or closable.is_closed:
        return
    try:
        async with asyncio.timeout(5):
            await closable.close()
    except Exception:
        log.debug(f"{what} close failed", exc_info=True)


# A dead letter keeps the routing key it was published with here (the DLQ's own routing key is
# its queue's name), so a replay hands the consumer the message as it first came.
ORIGINAL_ROUTING_KEY = "x-cpms-routing-key"


def original_routing_key(headers: Mapping[str, object], fallback: str) -> str:
    """The routing key a (possibly dead-lettered and replayed) message was first published with."""
    if isinstance(headers.get(ORIGINAL_ROUTING_KEY), str):
        return headers[ORIGINAL_ROUTING_KEY]
    deaths = headers.get("x-death")  # dead-lettered by RabbitMQ itself (its delivery limit)
    if isinstance(deaths, list) and deaths and isinstance(deaths[-1], dict):
        keys = deaths[-1].get("routing-keys")
        if isinstance(keys, list) and keys:
            return str(keys[0])
    return fallback


class PublishFailed(Exception):
    """The broker did not confirm the message in time: nothing may be promised to the sender."""


class Broker:
    """One robust connection per process; a few confirm-mode channels used in turn for publishing."""

    def __init__(self, url: str, prefix: str, *, publish_timeout: float, channels: int = 4) -> None:
        self.url = url
        self.prefix = prefix
        self.publish_timeout = publish_timeout
        self._channel_count = channels
        self.connection: AbstractRobustConnection | None = None
        self._publishers: list[dict[str, AbstractExchange]] = []
        self._next = itertools.count()

    async def connect(self) -> None:
        """One attempt: connect, declare the topology, open the publishing channels (the caller
        retries: `shared.startup.wait_for`). After it, the connection mends itself."""
        connection = await aio_pika.connect_robust(self.url, client_properties={"connection_name": f"cpms:{self.prefix}"})
        try:
            setup = await connection.channel()
            await declare_topology(setup, self.prefix)
            await setup.close()
            publishers = []
            for _ in range(self._channel_count):
                channel = await connection.channel(publisher_confirms=True)
                publishers.append(await self._exchanges_of(channel))
        except BaseException:
            await connection.close()
            raise
        self.connection, self._publishers = connection, publishers

    async def _exchanges_of(self, channel: AbstractChannel) -> dict[str, AbstractExchange]:
        return {ex.key: await channel.get_exchange(ex.name(self.prefix), ensure=False) for ex in EXCHANGES}

    @property
    def is_connected(self) -> bool:
        return self.connection is not None and not self.connection.is_closed and self.connection.connected.is_set()

    async def consumer_channel(self, prefetch: int) -> AbstractChannel:
        assert self.connection is not None, "connect() first"
        channel = await self.connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        return channel

    async def publish(
        self,
        exchange_key: str,
        routing_key: str,
        body: bytes,
        *,
        message_id: str,
        headers: Mapping[str, object] | None = None,
        content_type: str = "application/json",
    ) -> None:
        """Publish one persistent message and wait for the broker's confirm, or raise PublishFailed."""
        if not self._publishers or not self.is_connected:
            raise PublishFailed("broker not connected")
        exchanges = self._publishers[next(self._next) % len(self._publishers)]
        message = aio_pika.Message(
            body,
            message_id=message_id,
            content_type=content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            timestamp=datetime.now(UTC),
            headers=dict(headers or {}),
        )
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.publish_timeout):
                await exchanges[exchange_key].publish(message, routing_key=routing_key)
        except Exception as exc:  # a nack, a return, a closed channel, a timeout: all mean "not promised"
            raise PublishFailed(f"{type(exc).__name__}: {exc}") from exc
        metrics.BROKER_CONFIRM_SECONDS.labels(exchange_key).observe(time.perf_counter() - started)

    async def publish_envelope(self, exchange_key: str, routing_key: str, messages: list[tuple[str, bytes]]) -> None:
        """Publish (message id, JSON body) pairs as one envelope and wait for the confirm."""
        await self.publish(
            exchange_key, routing_key, envelope.pack(messages), message_id=uuid.uuid4().hex,
            headers={envelope.HEADER_COUNT: len(messages)}, content_type=envelope.CONTENT_TYPE,
        )

    async def dead_letter(self, queue: Queue, body: bytes, *, message_id: str, headers: Mapping[str, object], reason: str,
                          routing_key: str) -> None:
        """Move a message that cannot be applied to the queue's DLQ, with the reason in its headers."""
        await self.publish(
            DEAD_LETTER.key,
            queue.name(self.prefix),
            body,
            message_id=message_id,
            headers={
                **dict(headers),
                ORIGINAL_ROUTING_KEY: original_routing_key(headers, routing_key),
                "x-cpms-error": reason[:1000],
                "x-cpms-queue": queue.name(self.prefix),
                "x-cpms-dead-lettered-at": datetime.now(UTC).isoformat(),
            },
        )

    async def queue_depths(self) -> dict[str, int]:
        """Messages ready in every queue and DLQ of this prefix (passive declares)."""
        depths: dict[str, int] = {}
        if not self.is_connected:
            return depths
        channel = await self.connection.channel()
        try:
            for queue in QUEUES:
                for name in (queue.name(self.prefix), queue.dlq_name(self.prefix)):
                    declared = await channel.declare_queue(name, passive=True)
                    depths[name] = declared.declaration_result.message_count or 0
        finally:
            await channel.close()
        return depths

    async def close(self) -> None:
        await close_quietly(self.connection, "broker")
