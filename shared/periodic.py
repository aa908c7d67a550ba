"""Background work a service does on a timer (a sweep, a prune, an announcement), and the batched,
throttled delete that a prune is: short transactions, a pause between them, so the live traffic
that shares the tables never waits behind a long delete."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
from aiohttp import web

log = logging.getLogger(__name__)


def every(name: str, seconds: Callable[[web.Application], float | None],
          work: Callable[[web.Application], Awaitable[object]]):
    """A cleanup context running `work(app)` every `seconds(app)` (None: never) while the process
    runs; a failure (the database away) is logged and the next round tries again."""

    async def task_ctx(app: web.Application) -> AsyncIterator[None]:
        interval = seconds(app)
        if interval is None:
            yield
            return

        async def loop() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    await work(app)
                except Exception as exc:
                    log.warning(f"{name} failed", extra={"task": name, "error": repr(exc)})

        task = asyncio.create_task(loop(), name=name)
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return task_ctx


def quarter_of(window_seconds: float, *, at_most: float) -> float:
    """How often a periodic round looks for what a window of `window_seconds` makes due: four
    times a window, never more often than every 0.2 s, at least every `at_most` seconds."""
    return min(max(window_seconds / 4, 0.2), at_most)


async def delete_in_batches(pool: asyncpg.Pool, delete_batch: Callable[[asyncpg.Connection], Awaitable[int]], *,
                            batch_size: int, pause_seconds: float) -> int:
    """Run `delete_batch(conn)` (which deletes at most `batch_size` rows and says how many), one
    transaction each, with a pause between them, until a batch comes back short. Returns the total."""
    total = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            deleted = await delete_batch(conn)
        total += deleted
        if deleted < batch_size:
            return total
        await asyncio.sleep(pause_seconds)
