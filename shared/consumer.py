"""Consuming a queue: bounded prefetch, batches applied in one transaction with their inbox rows,
ack after commit. A redelivered message finds its id in the inbox and changes nothing."""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
import pydantic
from aio_pika.abc import AbstractIncomingMessage
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from shared import envelope, metrics
from shared.broker import Broker, PublishFailed, original_routing_key
from shared.db import TRANSIENT_BACKOFF, is_connection_error
from shared.topology import Queue

log = logging.getLogger(__name__)


class PermanentError(Exception):
    """This message can never be applied (its content is wrong): dead-letter it at once."""


@dataclass(frozen=True)
class Message:
    message_id: str
    routing_key: str
    body: dict[str, Any]
    headers: Mapping[str, Any] = field(default_factory=dict)
    repeat: bool = False  # its id was applied before (only handed over with `repeats=True`)


Handler = Callable[[asyncpg.Connection, Message], Awaitable[None]]
# Applies a batch inside the consumer's transaction; what it returns goes to the after-commit hook.
BatchHandler = Callable[[asyncpg.Connection, list[Message]], Awaitable[Any]]
AfterCommit = Callable[[Any], None]


def each(handler: Handler) -> BatchHandler:
    """A batch handler that applies the messages one by one with `handler`."""

    async def apply(conn: asyncpg.Connection, messages: list[Message]) -> None:
        for message in messages:
            await handler(conn, message)

    return apply


def _is_transient(exc: BaseException) -> bool:
    """Failures worth retrying the same batch for: the database away, or a lock conflict."""
    return is_connection_error(exc) or isinstance(
        exc, asyncpg.DeadlockDetectedError | asyncpg.SerializationError | asyncpg.LockNotAvailableError
    )


def decode(raw: AbstractIncomingMessage) -> list[Message]:
    """The messages a delivery carries: itself, or every message of an envelope."""
    try:
        body = orjson.loads(raw.body)
    except orjson.JSONDecodeError as exc:
        raise PermanentError(f"body is not JSON: {exc}") from exc
    headers = dict(raw.headers or {})
    routing_key = original_routing_key(headers, raw.routing_key or "")
    if raw.content_type == envelope.CONTENT_TYPE:
        try:
            return [Message(message_id, routing_key, item, headers) for message_id, item in envelope.unpack(body)]
        except ValueError as exc:
            raise PermanentError(str(exc)) from exc
    if not isinstance(body, dict):
        raise PermanentError("body is not a JSON object")
    if not raw.message_id:
        raise PermanentError("message has no message_id")
    return [Message(raw.message_id, routing_key, body, headers)]


@dataclass
class Delivery:
    raw: AbstractIncomingMessage
    messages: list[Message]


class Consumer:
    """Applies the messages of one queue inside one transaction per batch with `handler(conn,
    messages)`, and after the commit hands what it returned to `after_commit`. `inbox=False` is for
    a handler whose writes are keyed by the message id already, so its own table is its inbox.
    `repeats=True` hands the batch handler the messages the inbox already holds too, marked
    `repeat`: for newest-wins facts, where a charger's identical event sent again is its latest word."""

    def __init__(
        self,
        *,
        broker: Broker,
        pool: asyncpg.Pool,
        queue: Queue,
        schema: str,
        handler: BatchHandler,
        prefetch: int,
        batch_size: int,
        after_commit: AfterCommit | None = None,
        inbox: bool = True,
        linger: float = 0.0,
        repeats: bool = False,
    ) -> None:
        self.broker, self.pool, self.queue, self.schema = broker, pool, queue, schema
        self.inbox, self.repeats = inbox, repeats
        if repeats and not inbox:
            raise ValueError("repeats are for a consumer behind an inbox")
        self.handler = handler
        self.prefetch, self.batch_size, self.linger = prefetch, batch_size, linger
        self._stopping = False
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
        # Declared with its arguments once, with the whole topology (shared/topology.py); a passive
        # declare here only finds it, and lets the robust channel find it again after a reconnect.
        self._amqp_queue = await self._channel.declare_queue(self.name, passive=True)
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
        """Take deliveries as they come, a batch of up to `batch_size` messages at a time (an
        envelope counts as its messages), and apply each batch in one transaction. A batch that
        is not full waits up to `linger` seconds for more: under load that turns many small
        transactions into few large ones, at the price of that much latency."""
        loop = asyncio.get_running_loop()
        while True:
            raw = await self._incoming.get()
            if raw is None:
                return
            batch: list[Delivery] = []
            size, stopping = 0, False
            deadline = loop.time() + self.linger
            while True:
                delivery = await self._take(raw)
                if delivery is not None:
                    batch.append(delivery)
                    size += len(delivery.messages)
                if size >= self.batch_size:
                    break
                raw = await self._next(deadline - loop.time())
                if raw is None:
                    stopping = self._stopping
                    break
            try:
                if batch:
                    await self._process(batch)
            except Exception:  # never let one batch kill the consumer; its messages stay unacked
                log.exception("consumer batch failed unexpectedly", extra={"queue": self.name})
            if stopping:
                return

    async def _next(self, wait: float) -> AbstractIncomingMessage | None:
        """The next delivery if one comes within `wait` seconds, else None (None also on stop)."""
        if not self._incoming.empty():
            raw = self._incoming.get_nowait()
        elif wait <= 0:
            return None
        else:
            try:
                async with asyncio.timeout(wait):
                    raw = await self._incoming.get()
            except TimeoutError:
                return None
        if raw is None:
            self._stopping = True
        return raw

    async def _take(self, raw: AbstractIncomingMessage) -> Delivery | None:
        """Decode one delivery; one that cannot be decoded is dead-lettered at once."""
        if raw.redelivered:
            metrics.CONSUMER_REDELIVERIES.labels(self.name).inc()
        try:
            return Delivery(raw, decode(raw))
        except PermanentError as exc:
            await self._dead_letter(raw, raw.body, raw.message_id or "", str(exc))
            return None

    async def _process(self, batch: list[Delivery]) -> None:
        try:
            await self._apply_with_retry([m for d in batch for m in d.messages])
        except Exception as exc:
            if len(batch) == 1 and len(batch[0].messages) == 1:
                await self._settle_failed(batch[0], [(batch[0].messages[0], exc)])
                return
            # Something in the batch cannot be applied: find it, a delivery at a time, then
            # within a failing envelope a message at a time. The others are applied and acked.
            for delivery in batch:
                await self._process_alone(delivery)
            return
        # Batches are taken in delivery order and applied one after another, so acking the last
        # delivery with `multiple` settles exactly this batch, in one frame.
        await self._ack(batch[-1].raw, multiple=len(batch) > 1)

    async def _process_alone(self, delivery: Delivery) -> None:
        try:
            await self._apply_with_retry(delivery.messages)
            await self._ack(delivery.raw)
            return
        except Exception as exc:
            if len(delivery.messages) == 1:
                await self._settle_failed(delivery, [(delivery.messages[0], exc)])
                return
        failed: list[tuple[Message, Exception]] = []
        for message in delivery.messages:
            try:
                await self._apply_with_retry([message])
            except Exception as exc:
                failed.append((message, exc))
        if failed:
            await self._settle_failed(delivery, failed)
        else:
            await self._ack(delivery.raw)

    async def _apply_with_retry(self, messages: list[Message]) -> None:
        """Apply; while the database is away (or a lock conflict), wait and try the same messages
        again. No bound on the number of tries: giving up would dead-letter good messages."""
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(_is_transient), wait=TRANSIENT_BACKOFF, before_sleep=self._log_retry, reraise=True,
        ):
            with attempt:
                await self._apply(messages)

    def _log_retry(self, state: RetryCallState) -> None:
        log.warning("transient failure, retrying batch", extra={
            "queue": self.name, "error": repr(state.outcome.exception()), "retry_in": round(state.upcoming_sleep, 3)})

    async def _apply(self, messages: list[Message]) -> None:
        started = time.perf_counter()
        unique: dict[str, Message] = {}
        for message in messages:
            unique.setdefault(message.message_id, message)
        async with self.pool.acquire() as conn, conn.transaction():
            if self.inbox:
                rows = await conn.fetch(
                    f'INSERT INTO "{self.schema}".inbox (message_id) SELECT unnest($1::text[]) '
                    "ON CONFLICT DO NOTHING RETURNING message_id",
                    list(unique),
                )
                fresh = {r["message_id"] for r in rows}
                to_apply = [m for message_id, m in unique.items() if message_id in fresh]
                if self.repeats:
                    firsts = {id(m) for m in to_apply}
                    to_apply = [m if id(m) in firsts else dataclasses.replace(m, repeat=True) for m in messages]
            else:
                fresh, to_apply = set(unique), list(unique.values())
            result = await self.handler(conn, to_apply) if to_apply else None
        metrics.CONSUMER_BATCH_SECONDS.labels(self.name).observe(time.perf_counter() - started)
        metrics.CONSUMER_BATCH_SIZE.labels(self.name).observe(len(messages))
        metrics.CONSUMER_MESSAGES.labels(self.name, "applied").inc(len(fresh))
        if len(messages) > len(fresh):
            metrics.CONSUMER_MESSAGES.labels(self.name, "duplicate").inc(len(messages) - len(fresh))
        if fresh and self.after_commit is not None:
            self.after_commit(result)

    async def _ack(self, raw: AbstractIncomingMessage, *, multiple: bool = False) -> None:
        try:
            await raw.ack(multiple=multiple)
        except Exception:  # channel lost after commit: the broker redelivers, the inbox absorbs it
            log.warning("ack failed after commit", extra={"queue": self.name})

    async def _settle_failed(self, delivery: Delivery, failed: list[tuple[Message, Exception]]) -> None:
        """Messages that failed on their own: their delivery is retried up to the delivery limit
        (what was applied meanwhile is in the inbox), then each failed message is dead-lettered."""
        raw = delivery.raw
        deliveries = int((raw.headers or {}).get("x-delivery-count", 0) or 0) + 1
        permanent = all(isinstance(exc, PermanentError | pydantic.ValidationError | KeyError | ValueError | TypeError)
                        for _, exc in failed)
        if not permanent and deliveries < self.queue.delivery_limit:
            for message, exc in failed:
                log.warning("message failed, will be redelivered",
                            extra={"queue": self.name, "message_id": message.message_id, "error": f"{type(exc).__name__}: {exc}"})
            metrics.CONSUMER_MESSAGES.labels(self.name, "retried").inc(len(failed))
            await asyncio.sleep(min(0.1 * 2**deliveries, 2.0))
            await raw.nack(requeue=True)
            return
        alone = len(delivery.messages) == 1
        for message, exc in failed:
            reason = f"{type(exc).__name__}: {exc}"
            log.error("message dead-lettered", extra={"queue": self.name, "message_id": message.message_id, "error": reason})
            # A message of its own goes as it came; a message of an envelope goes as a message of its own.
            body = raw.body if alone else orjson.dumps(message.body)
            if not await self._dead_letter(raw, body, message.message_id, reason, ack=False):
                return
        await self._ack(raw)

    async def _dead_letter(self, raw: AbstractIncomingMessage, body: bytes, message_id: str, reason: str, *, ack: bool = True) -> bool:
        """Publish `body` to the queue's DLQ with the reason; False (and the delivery requeued)
        when the DLQ cannot be reached, so nothing is lost."""
        try:
            await self.broker.dead_letter(self.queue, body, message_id=message_id, headers=dict(raw.headers or {}), reason=reason,
                                          routing_key=raw.routing_key or "")
        except PublishFailed:
            await raw.nack(requeue=True)
            return False
        metrics.CONSUMER_DEAD_LETTERED.labels(self.name).inc()
        metrics.CONSUMER_MESSAGES.labels(self.name, "dead_lettered").inc()
        if ack:
            await self._ack(raw)
        return True
