"""Delivering commands to the gateway outside any consumer transaction. A dispatcher claims due
commands with a lease (replicas share the work), writes each attempt before sending it, retries
while the gateway cannot reach the charger until the command's time to live runs out, and never
sends again once the charger may have acted (a timeout, or a send whose process died)."""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
from aiohttp import web
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)

from services.commands import answers, metrics, store
from services.commands.gateway import GatewayClient, Outcome
from services.commands.models import FINAL_STATUSES
from shared.db import is_connection_error, until_it_works

log = logging.getLogger(__name__)

LEASE_MARGIN_SECONDS = 10.0  # beyond the gateway timeout: time to record what the gateway answered
OVERDUE_SECONDS = 10.0  # a due command nobody claimed for this long was dropped by its process
SWEEP_SECONDS = 1.0
MAX_IN_FLIGHT = 200
BACKOFF_INITIAL_SECONDS, BACKOFF_MAX_SECONDS = 0.25, 10.0


class GatewayUnavailable(Exception):
    """The gateway could not reach the charger (or we could not reach the gateway): try again."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.error)
        self.outcome = outcome


class LostClaim(Exception):
    """Another dispatcher (or the sweep) took the command over: leave it alone."""


def _stop_at(deadline: datetime) -> Callable[[RetryCallState], bool]:
    def stop(state: RetryCallState) -> bool:
        return datetime.now(UTC) + timedelta(seconds=state.upcoming_sleep) >= deadline

    return stop


def _count_final(row: asyncpg.Record | None) -> None:
    if row is not None and row["status"] in FINAL_STATUSES:
        metrics.COMMANDS.labels(row["type"], row["status"]).inc()


class Dispatcher:
    """Runs the deliveries of this process. `expect(id)` from the dispatch consumer, then
    `committed()` once its transaction is in, hands a command over at once; a periodic sweep
    fails abandoned and expired commands and takes over overdue ones from dead processes."""

    def __init__(self, *, pool: asyncpg.Pool, gateway: GatewayClient, gateway_timeout_seconds: float) -> None:
        self.pool, self.gateway = pool, gateway
        self.lease_seconds = gateway_timeout_seconds + LEASE_MARGIN_SECONDS
        self._arrived: set[UUID] = set()
        self._wakeup = asyncio.Event()
        self._deliveries: dict[UUID, asyncio.Task] = {}
        self._sending: set[UUID] = set()
        self._next_sweep = 0.0
        self._stopping = False
        self._task: asyncio.Task | None = None

    def hand_over(self, command_ids: list[UUID] | None) -> None:
        """Commands the dispatch consumer just committed as due: deliver them now."""
        if command_ids:
            self._arrived.update(command_ids)
            self._wakeup.set()

    @property
    def is_running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="commands:dispatcher")

    async def stop(self) -> None:
        """Take nothing new, let requests in flight finish (their outcome is known then); deliveries
        waiting for a retry are dropped and later taken over from their lease."""
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            await asyncio.wait([self._task], timeout=5)
            self._task.cancel()
        for command_id, task in list(self._deliveries.items()):
            if command_id not in self._sending:
                task.cancel()
        if self._deliveries:
            _, pending = await asyncio.wait(list(self._deliveries.values()), timeout=self.lease_seconds)
            for task in pending:
                task.cancel()

    async def _failed(self, exc: BaseException) -> None:
        if not is_connection_error(exc):
            log.error("dispatcher cycle failed", extra={"error": repr(exc)})

    async def _run(self) -> None:
        while not self._stopping:
            await until_it_works(self._claim_and_start, stopping=lambda: self._stopping, on_failure=self._failed)
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=SWEEP_SECONDS)
            except TimeoutError:
                pass
            self._wakeup.clear()

    async def _claim_and_start(self) -> None:
        owner = uuid.uuid4()
        claimed: list[asyncpg.Record] = []
        async with self.pool.acquire() as conn:
            if time.monotonic() >= self._next_sweep:
                self._next_sweep = time.monotonic() + SWEEP_SECONDS
                async with conn.transaction():
                    abandoned, expired = await store.fail_abandoned(conn), await store.fail_expired(conn)
                    await answers.announce(conn, abandoned, "unknown")
                    await answers.announce(conn, expired, None)
                for row in [*abandoned, *expired]:
                    _count_final(row)
                    log.warning("command failed in sweep", extra={"command_id": str(row["command_id"]), "error": row["error"]})
                claimed += await store.claim(conn, owner=owner, lease_seconds=self.lease_seconds,
                                             limit=self._room(), overdue_seconds=OVERDUE_SECONDS)
                metrics.WAITING.set(await store.count_waiting(conn))
            arrived = list(self._arrived)
            self._arrived.clear()
            if arrived and self._room() > len(claimed):
                claimed += await store.claim(conn, owner=owner, lease_seconds=self.lease_seconds,
                                             limit=self._room() - len(claimed), command_ids=arrived)
        for command in claimed:
            task = asyncio.create_task(self._deliver(command, owner), name=f"commands:deliver:{command['command_id']}")
            self._deliveries[command["command_id"]] = task
            task.add_done_callback(lambda _, command_id=command["command_id"]: self._deliveries.pop(command_id, None))

    def _room(self) -> int:
        return max(MAX_IN_FLIGHT - len(self._deliveries), 0)

    async def _deliver(self, command: asyncpg.Record, owner: UUID) -> None:
        command_id = command["command_id"]
        try:
            if command["expired"]:
                await self._record(lambda conn: store.record_failed(
                    conn, command_id, None, owner=owner, result=None,
                    error="time to live ran out before the command could be sent"), result=None)
                return
            retrying = AsyncRetrying(
                retry=retry_if_exception_type(GatewayUnavailable),
                wait=wait_exponential_jitter(initial=BACKOFF_INITIAL_SECONDS, max=BACKOFF_MAX_SECONDS, jitter=BACKOFF_INITIAL_SECONDS),
                stop=_stop_at(command["expires_at"]),
                reraise=True,
            )
            try:
                async for attempt in retrying:
                    with attempt:
                        await self._attempt(command, owner)
            except GatewayUnavailable as exc:
                tries = retrying.statistics.get("attempt_number", 1)
                error = f"time to live ran out after {tries} attempt(s); last error: {exc.outcome.error}"
                await self._record(lambda conn: store.record_failed(conn, command_id, None, owner=owner, result=None, error=error),
                                   result=None)
        except LostClaim:
            log.info("command taken over elsewhere", extra={"command_id": str(command_id)})
        except asyncio.CancelledError:
            raise
        except Exception:  # its lease runs out and the sweep decides: retried if unsent, else outcome unknown
            log.exception("delivery failed", extra={"command_id": str(command_id)})

    async def _attempt(self, command: asyncpg.Record, owner: UUID) -> None:
        command_id = command["command_id"]
        async with self.pool.acquire() as conn:
            number = await store.begin_attempt(conn, command_id, owner=owner, lease_seconds=self.lease_seconds)
        if number is None:
            raise LostClaim
        self._sending.add(command_id)
        started = time.perf_counter()
        try:
            outcome = await self.gateway.send(
                command_type=command["type"], charge_point_id=command["charge_point_id"],
                idempotency_key=command["idempotency_key"], payload=command["payload"],
            )
        finally:
            self._sending.discard(command_id)
        metrics.DISPATCH_SECONDS.observe(time.perf_counter() - started)
        metrics.ATTEMPTS.labels(outcome.result).inc()
        if outcome.result == "acked":
            await self._record(lambda conn: store.record_acked(
                conn, command_id, number, owner=owner, http_status=outcome.http_status,
                response=outcome.response, gateway_command_id=outcome.gateway_command_id), result=outcome.result)
        elif outcome.result == "unavailable":
            await self._record(lambda conn: store.record_unavailable(
                conn, command_id, number, owner=owner, error=outcome.error, http_status=outcome.http_status,
                hold_seconds=BACKOFF_MAX_SECONDS * 1.5 + LEASE_MARGIN_SECONDS))
            raise GatewayUnavailable(outcome)
        else:  # refused by the gateway or by the charger (a CallError, its answer kept), or unknown: final
            await self._record(lambda conn: store.record_failed(
                conn, command_id, number, owner=owner, result=outcome.result, error=outcome.error,
                http_status=outcome.http_status, response=outcome.response, gateway_command_id=outcome.gateway_command_id),
                result=outcome.result)

    async def _record(self, write: Callable[[asyncpg.Connection], Awaitable[object]], *, result: str | None = None) -> None:
        """Write an outcome (and, for an ordered command that is final now, its answer, in the same
        transaction); while the database is away, keep trying within the lease margin, so an answer
        we got is not turned into "outcome unknown" by a short outage. `result`: the attempt's."""
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(is_connection_error),
            wait=wait_exponential_jitter(initial=0.1, max=2),
            stop=stop_after_delay(LEASE_MARGIN_SECONDS / 2),
            reraise=True,
        ):
            with attempt:
                async with self.pool.acquire() as conn, conn.transaction():
                    row = await write(conn)
                    if isinstance(row, asyncpg.Record):
                        await answers.announce(conn, [row], result)
        if isinstance(row, asyncpg.Record):
            _count_final(row)


DISPATCHER = web.AppKey("commands_dispatcher", Dispatcher)
