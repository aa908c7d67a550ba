"""Consuming a queue: bounded prefetch, batches applied in one transaction with their inbox rows,
ack after commit. A redelivered message finds its id in the inbox and changes nothing."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
import pydantic
from aio_pika.abc import AbstractIncomingMessage

from shared import metrics
from shared.broker import Broker, PublishFailed
from shared.db import is_connection_error
from shared.topology import Queue, declare_queue

log = logging.getLogger(__name__)


class PermanentError(Exception):
    """This message can never be applied (its content is wrong): dead-letter it at once."""


@dataclass(frozen=True)
class Message:
    message_id: str
    routing_key: str
    body: dict[str, Any]
    headers: Mapping[str, Any] = field(default_factory=dict)


Handler = Callable[[asyncpg.Connection, Message], Awaitable[None]]
BatchHandler = Callable[[asyncpg.Connection, list[Message]], Awaitable[None]]
AfterCommit = Callable[[], None]


def _is_transient(exc: BaseException) -> bool:
    """Failures worth retrying the same batch for: the database away, or a lock conflict."""
    return is_connection_error(exc) or isinstance(
        exc, asyncpg.DeadlockDetectedError | asyncpg.SerializationError | asyncpg.LockNotAvailableError
    )


def _decode(raw: AbstractIncomingMessage) -> Message:
    try:
        body = orjson.loads(raw.body)
    except orjson.JSONDecodeError as exc:
        raise PermanentError(f"body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise PermanentError("body is not a JSON object")
    if not raw.message_id:
        raise PermanentError("message has no message_id")
    return Message(raw.message_id, raw.routing_key or "", body, dict(raw.headers or {}))


class Consumer:
    """Applies the messages of one queue inside one transaction per batch, with `handler(conn, message)`
    for each, or `batch_handler(conn, messages)` for all of them at once."""

    def __init__(
        self,
        *,
        broker: Broker,
        pool: asyncpg.Pool,
        queue: Queue,
        schema: str,
        handler: Handler | None = None,
        batch_handler: BatchHandler | None = None,
        prefetch: int,
        batch_size: int,
        after_commit: AfterCommit | None = None,
    ) -> None:
        self.broker, self.pool, self.queue, self.schema = broker, pool, queue, schema
        if (handler is None) == (batch_handler is None):
            raise ValueError("give a consumer exactly one of handler and batch_handler")
        self.handler, self.batch_handler = handler, batch_handler
        self.prefetch, self.batch_size = prefetch, batch_size
        self.after_commit = after_commit
        self.name = queue.name(broker.prefix)
        self._incoming: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self._worker: asyncio.Task | None = None
        self._channel = None
        self._consumer_tag: str | None = None
        self._amqp_queue = None

    @property
    def is_running(self) -> bool:
        return self._worker is not None and not self._worker.done() and self._channel is not None and not self._channel.is_closed

    async def start(self) -> None:
        self._channel = await self.broker.consumer_channel(self.prefetch)
        self._amqp_queue = await declare_queue(self._channel, self.queue, self.broker.prefix, delivery_limit=self.broker.delivery_limit)
        self._consumer_tag = await self._amqp_queue.consume(self._incoming.put)
        self._worker = asyncio.create_task(self._work(), name=f"consumer:{self.name}")

    async def stop(self) -> None:
        """Stop taking deliveries, finish the batch in hand; what is still unacked goes back to the queue.
        With the broker away there is nothing to cancel or close: the broker requeues on its own."""
        connected = self.broker.is_connected
        if connected and self._amqp_queue is not None and self._consumer_tag is not None:
            try:
                async with asyncio.timeout(5):
                    await self._amqp_queue.cancel(self._consumer_tag)
            except Exception:  # the channel may already be gone; the broker then requeues anyway
                log.debug("cancel failed", exc_info=True)
        if self._worker is not None:
            self._incoming.put_nowait(None)  # wakes the worker so it can see it is done
            try:
                await asyncio.wait_for(self._worker, timeout=30)
            except (TimeoutError, asyncio.CancelledError):
                self._worker.cancel()
        if connected and self._channel is not None and not self._channel.is_closed:
            try:
                async with asyncio.timeout(5):
                    await self._channel.close()
            except Exception:  # the connection is gone already
                log.debug("channel close failed", exc_info=True)

    async def _work(self) -> None:
        while True:
            first = await self._incoming.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.batch_size and not self._incoming.empty():
                item = self._incoming.get_nowait()
                if item is None:
                    await self._process(batch)
                    return
                batch.append(item)
            try:
                await self._process(batch)
            except Exception:  # never let one batch kill the consumer; its messages stay unacked
                log.exception("consumer batch failed unexpectedly", extra={"queue": self.name})

    async def _process(self, batch: list[AbstractIncomingMessage]) -> None:
        decoded: list[tuple[AbstractIncomingMessage, Message]] = []
        for raw in batch:
            if raw.redelivered:
                metrics.CONSUMER_REDELIVERIES.labels(self.name).inc()
            try:
                decoded.append((raw, _decode(raw)))
            except PermanentError as exc:
                await self._dead_letter(raw, str(exc))
        if not decoded:
            return
        try:
            await self._apply_with_retry(decoded)
            return
        except Exception as exc:
            failure = exc
        if len(decoded) == 1:
            await self._reject(*decoded[0], failure)
            return
        # Something in the batch cannot be applied: find it by applying one message at a time.
        for raw, message in decoded:
            try:
                await self._apply_with_retry([(raw, message)])
            except Exception as exc:
                await self._reject(raw, message, exc)

    async def _apply_with_retry(self, batch: list[tuple[AbstractIncomingMessage, Message]]) -> None:
        """Apply and ack; while the database is away, wait and try the same batch again."""
        delay = 0.1
        while True:
            try:
                await self._apply(batch)
                break
            except Exception as exc:
                if not _is_transient(exc):
                    raise
                log.warning("transient failure, retrying batch", extra={"queue": self.name, "error": repr(exc), "retry_in": delay})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        # Batches are taken in delivery order and applied one after another, so acking the last
        # delivery with `multiple` settles exactly this batch, in one frame.
        await self._ack(batch[-1][0], multiple=len(batch) > 1)

    async def _apply(self, batch: list[tuple[AbstractIncomingMessage, Message]]) -> None:
        started = time.perf_counter()
        unique: dict[str, Message] = {}
        for _, message in batch:
            unique.setdefault(message.message_id, message)
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                f'INSERT INTO "{self.schema}".inbox (message_id) SELECT unnest($1::text[]) '
                "ON CONFLICT DO NOTHING RETURNING message_id",
                list(unique),
            )
            fresh = {r["message_id"] for r in rows}
            to_apply = [m for message_id, m in unique.items() if message_id in fresh]
            if self.batch_handler is not None:
                if to_apply:
                    await self.batch_handler(conn, to_apply)
            else:
                for message in to_apply:
                    await self.handler(conn, message)
        metrics.CONSUMER_BATCH_SECONDS.labels(self.name).observe(time.perf_counter() - started)
        metrics.CONSUMER_BATCH_SIZE.labels(self.name).observe(len(batch))
        metrics.CONSUMER_MESSAGES.labels(self.name, "applied").inc(len(fresh))
        if len(batch) > len(fresh):
            metrics.CONSUMER_MESSAGES.labels(self.name, "duplicate").inc(len(batch) - len(fresh))
        if fresh and self.after_commit is not None:
            self.after_commit()

    async def _ack(self, raw: AbstractIncomingMessage, *, multiple: bool = False) -> None:
        try:
            await raw.ack(multiple=multiple)
        except Exception:  # channel lost after commit: the broker redelivers, the inbox absorbs it
            log.warning("ack failed after commit", extra={"queue": self.name})

    async def _reject(self, raw: AbstractIncomingMessage, message: Message, exc: Exception) -> None:
        """A message that failed on its own: retried up to the delivery limit, then dead-lettered."""
        deliveries = int((raw.headers or {}).get("x-delivery-count", 0) or 0) + 1
        permanent = isinstance(exc, PermanentError | pydantic.ValidationError | KeyError | ValueError | TypeError)
        reason = f"{type(exc).__name__}: {exc}"
        if permanent or deliveries >= self.broker.delivery_limit:
            log.error("message dead-lettered", extra={"queue": self.name, "message_id": message.message_id, "error": reason})
            await self._dead_letter(raw, reason)
            return
        log.warning("message failed, will be redelivered", extra={"queue": self.name, "message_id": message.message_id, "error": reason})
        metrics.CONSUMER_MESSAGES.labels(self.name, "retried").inc()
        await asyncio.sleep(min(0.1 * 2**deliveries, 2.0))
        await raw.nack(requeue=True)

    async def _dead_letter(self, raw: AbstractIncomingMessage, reason: str) -> None:
        try:
            await self.broker.dead_letter(
                self.queue, raw.body, message_id=raw.message_id or "", headers=dict(raw.headers or {}), reason=reason
            )
        except PublishFailed:
            await raw.nack(requeue=True)  # the DLQ is unreachable: keep the message rather than lose it
            return
        metrics.CONSUMER_DEAD_LETTERED.labels(self.name).inc()
        metrics.CONSUMER_MESSAGES.labels(self.name, "dead_lettered").inc()
        await self._ack(raw)
