"""Dead letters, for operators (`cpms dlq ...`): how many wait in each dead-letter queue, what
they are and why they failed, and replaying them into their queue once the cause is mended. A
replayed message keeps its id and its first routing key, so it goes through the consumer's
inbox: one that was applied after all changes nothing the second time."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue

from shared.broker import ORIGINAL_ROUTING_KEY, Broker, original_routing_key
from shared.topology import QUEUES, Queue

_DEAD_LETTER_HEADERS = ("x-death", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason",
                        "x-last-death-exchange", "x-last-death-queue", "x-last-death-reason", "x-delivery-count")


class UnknownQueue(ValueError):
    pass


def queue_named(name: str, prefix: str) -> Queue:
    """A work queue by its key (`sessions.charger-events`), its full name, or its DLQ's name."""
    for queue in QUEUES:
        if name in (queue.key, queue.name(prefix), queue.dlq_name(prefix), f"{queue.key}.dlq"):
            return queue
    known = ", ".join(q.key for q in QUEUES)
    raise UnknownQueue(f"no queue {name!r}; the queues are: {known}")


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    routing_key: str
    reason: str
    dead_lettered_at: str | None
    body: bytes

    @classmethod
    def of(cls, raw: AbstractIncomingMessage) -> DeadLetter:
        headers: dict[str, Any] = dict(raw.headers or {})
        reason = headers.get("x-cpms-error") or headers.get("x-last-death-reason") or headers.get("x-first-death-reason") or ""
        return cls(raw.message_id or "", original_routing_key(headers, raw.routing_key or ""), str(reason),
                   headers.get("x-cpms-dead-lettered-at"), raw.body)


async def depths(broker: Broker) -> dict[str, int]:
    """Messages waiting in each dead-letter queue, by work queue key."""
    found = await broker.queue_depths()
    return {q.key: found.get(q.dlq_name(broker.prefix), 0) for q in QUEUES}


async def _dlq(broker: Broker, queue: Queue) -> tuple[aio_pika.abc.AbstractChannel, AbstractQueue]:
    channel = await broker.connection.channel(publisher_confirms=True)
    return channel, await channel.declare_queue(queue.dlq_name(broker.prefix), passive=True)


async def peek(broker: Broker, queue: Queue, *, limit: int) -> list[DeadLetter]:
    """Up to `limit` dead letters, oldest first, left where they are."""
    channel, dlq = await _dlq(broker, queue)
    try:
        taken = []
        while len(taken) < limit and (raw := await dlq.get(no_ack=False, fail=False)) is not None:
            taken.append(raw)
        for raw in taken:
            await raw.nack(requeue=True)
        return [DeadLetter.of(raw) for raw in taken]
    finally:
        await channel.close()


async def replay(broker: Broker, queue: Queue, *, message_id: str | None = None,
                 progress: Callable[[int, int], None] = lambda done, total: None) -> int:
    """Move the dead letters (or the one with `message_id`) back to their queue: each is published
    with its id and first routing key, confirmed, and only then removed from the DLQ. At most the
    messages there when it began: one that fails again waits for the next replay. Returns how many."""
    channel, dlq = await _dlq(broker, queue)
    kept: list[AbstractIncomingMessage] = []
    replayed = 0
    try:
        total = dlq.declaration_result.message_count or 0
        for _ in range(total):
            raw = await dlq.get(no_ack=False, fail=False)
            if raw is None:
                break
            if message_id is not None and raw.message_id != message_id:
                kept.append(raw)
                continue
            await channel.default_exchange.publish(_again(raw), routing_key=queue.name(broker.prefix))
            await raw.ack()
            replayed += 1
            progress(replayed, 1 if message_id else total)
            if message_id is not None:
                break
        return replayed
    finally:
        for raw in kept:
            await raw.nack(requeue=True)
        await channel.close()


def _again(raw: AbstractIncomingMessage) -> aio_pika.Message:
    headers = {k: v for k, v in dict(raw.headers or {}).items() if k not in _DEAD_LETTER_HEADERS}
    headers[ORIGINAL_ROUTING_KEY] = original_routing_key(dict(raw.headers or {}), raw.routing_key or "")
    return aio_pika.Message(raw.body, message_id=raw.message_id, content_type=raw.content_type, headers=headers,
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT, timestamp=raw.timestamp)


async def purge(broker: Broker, queue: Queue) -> int:
    """Drop every dead letter of the queue; returns how many there were."""
    channel, dlq = await _dlq(broker, queue)
    try:
        result = await dlq.purge()
        return result.message_count
    finally:
        await channel.close()
