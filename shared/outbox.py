"""The transactional outbox: a message is written in the same transaction as the state change
that causes it; the relay publishes it with a confirm and only then deletes it. A crash in
between publishes it again with the same message id, which the consumer's inbox absorbs.
What one round of the relay finds goes out as one envelope per routing key."""
from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable

import asyncpg
import orjson

from shared import metrics
from shared.broker import Broker, PublishFailed
from shared.db import is_connection_error, until_it_works
from shared.domain import DomainMessage, payload
from shared.topology import DOMAIN

log = logging.getLogger(__name__)


async def enqueue_domain(conn: asyncpg.Connection, schema: str, message: DomainMessage) -> str:
    """Add a domain message to `schema`'s outbox inside the caller's transaction; returns its id."""
    return (await enqueue_domain_many(conn, schema, [message]))[0]


async def enqueue_domain_many(conn: asyncpg.Connection, schema: str, messages: list[DomainMessage]) -> list[str]:
    """Add domain messages to `schema`'s outbox in one statement, inside the caller's transaction;
    returns their message ids."""
    if not messages:
        return []
    message_ids = [str(uuid.uuid4()) for _ in messages]
    await conn.execute(
        f'INSERT INTO "{schema}".outbox (exchange, routing_key, message_id, body) '
        "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[])",
        # The pool's jsonb codec encodes each body itself: hand it plain JSON data, not JSON text.
        [DOMAIN.key] * len(messages), [m.routing_key for m in messages], message_ids, [payload(m) for m in messages],
    )
    return message_ids


class OutboxRelay:
    """Publishes a schema's outbox (or another table of the same shape, such as ingest's spool) in
    id order. `wake()` after a commit makes it run at once; otherwise it polls, which also covers
    rows written by other processes. `on_backlog(n)` hears how many rows wait, after every round
    that found rows or failed (default: the `cpms_outbox_backlog_messages` gauge)."""

    def __init__(
        self, *, broker: Broker, pool: asyncpg.Pool, schema: str, poll_seconds: float, batch_size: int = 500,
        table: str = "outbox", on_backlog: Callable[[int], None] | None = None,
    ) -> None:
        self.broker, self.pool, self.schema, self.table = broker, pool, schema, table
        self.poll_seconds, self.batch_size = poll_seconds, batch_size
        self.on_backlog = on_backlog or metrics.OUTBOX_BACKLOG.labels(schema).set
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopping = False

    def wake(self) -> None:
        self._wakeup.set()

    @property
    def is_running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"outbox:{self.schema}")

    async def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=10)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()

    async def _failed(self, exc: BaseException) -> None:
        if not (is_connection_error(exc) or isinstance(exc, PublishFailed)):
            log.error("outbox relay failed", extra={"schema": self.schema, "table": self.table, "error": repr(exc)})
        await self._report_backlog()

    async def _run(self) -> None:
        while not self._stopping:
            published = await until_it_works(self.relay_once, stopping=lambda: self._stopping, on_failure=self._failed)
            if published == self.batch_size:
                continue  # more is waiting
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=self.poll_seconds)
            except TimeoutError:
                pass
            self._wakeup.clear()

    async def _report_backlog(self) -> None:
        try:
            async with self.pool.acquire() as conn:
                self.on_backlog(await conn.fetchval(f'SELECT count(*) FROM "{self.schema}"."{self.table}"'))
        except Exception:  # the database is away too: the last figure stands
            log.debug("could not count the backlog", exc_info=True)

    async def relay_once(self) -> int:
        """Publish one batch, oldest first; returns how many messages were published."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                f'SELECT id, exchange, routing_key, message_id, body FROM "{self.schema}"."{self.table}" '
                "ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                self.batch_size,
            )
            if rows:
                # One envelope per routing key: consumers do not depend on the order between messages.
                groups: dict[tuple[str, str], list[tuple[str, bytes]]] = {}
                for r in rows:
                    groups.setdefault((r["exchange"], r["routing_key"]), []).append((r["message_id"], orjson.dumps(r["body"])))
                await asyncio.gather(*(
                    self.broker.publish_envelope(exchange, routing_key, messages)
                    for (exchange, routing_key), messages in groups.items()
                ))
                await conn.execute(f'DELETE FROM "{self.schema}"."{self.table}" WHERE id = ANY($1::bigint[])', [r["id"] for r in rows])
            backlog = await conn.fetchval(f'SELECT count(*) FROM "{self.schema}"."{self.table}"') if len(rows) == self.batch_size else 0
        if rows:
            metrics.OUTBOX_PUBLISHED.labels(self.schema if self.table == "outbox" else f"{self.schema}.{self.table}").inc(len(rows))
        self.on_backlog(backlog)
        return len(rows)
