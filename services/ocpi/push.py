"""Durable pushes to partners (CONTRACT 12, "Push is durable"): a change is written to the push
outbox, one row per partner with the module's RECEIVER endpoint, in the transaction of the change;
a relay sends each partner's rows in order, one at a time, and retries while the partner is down
(with a delay doubling up to CPMS_OCPI_PUSH_RETRY_MAX_SECONDS), so a partner back after an hour
gets every change, in order. PUT and PATCH by object id are idempotent: a row sent again after a
crash changes nothing at the partner.

A partner's answer decides: 1xxx delivered; 2xxx (or HTTP 4xx but 401/408/429) refused for good,
dropped and counted (sending it again would fail again and hold back everything after it); no
answer, a 5xx, a 3xxx, 401, 408 or 429: tried again later, nothing after it is sent before it."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiohttp import web

from services.ocpi import client, metrics, store
from shared.app import POOL, SETTINGS
from shared.db import is_connection_error, until_it_works

log = logging.getLogger(__name__)

RELAY = web.AppKey("ocpi_push_relay", object)
_BATCH = 100
_RETRY_HTTP = frozenset({401, 408, 429})


async def enqueue_push(conn: asyncpg.Connection, *, module: str, object_key: str, method: str, path: str, body: Any) -> int:
    """Send `method` `{partner's module endpoint}{path}` with `body` to every registered partner
    with a RECEIVER endpoint of `module`, inside the caller's transaction; returns how many.
    `object_key` names the object (pushes of one object keep their order)."""
    partners = await store.partners.receivers_of(conn, module)
    await store.push.enqueue(conn, partners, module=module, object_key=object_key, method=method, path=path, body=body)
    return len(partners)


def wake_push(app: web.Application) -> None:
    """After a commit that enqueued pushes: send them now rather than at the next poll."""
    relay = app.get(RELAY)
    if relay is not None:
        relay.wake()


def wakes_push(app: web.Application):
    """`Consumes(..., after_commit=wakes_push)`: a consumer that enqueued pushes sends them at once."""
    return lambda _result: wake_push(app)


class PushRelay:
    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.settings = app[SETTINGS]
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task | None = None

    def wake(self) -> None:
        self._wakeup.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ocpi:push")

    async def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=self.settings.ocpi_push_timeout_seconds + 5)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()

    async def _run(self) -> None:
        while not self._stopping:
            await until_it_works(self.send_once, stopping=lambda: self._stopping, on_failure=self._failed)
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=self.settings.ocpi_push_poll_seconds)
            except TimeoutError:
                pass
            self._wakeup.clear()

    async def _failed(self, exc: BaseException) -> None:
        if not is_connection_error(exc):
            log.error("the OCPI push relay failed", extra={"error": repr(exc)})

    async def send_once(self) -> None:
        """One round: every partner whose turn it is, one after another, each as far as it goes."""
        pool = self.app[POOL]
        async with pool.acquire() as conn:
            partners = await store.push.due_partners(conn, datetime.now(UTC))
        for partner_id in partners:
            if self._stopping:
                break
            await self._send_partner(partner_id)
        async with pool.acquire() as conn:
            metrics.PUSH_BACKLOG.set(await store.push.backlog(conn))

    async def _send_partner(self, partner_id) -> None:
        pool = self.app[POOL]
        async with pool.acquire() as conn, conn.transaction():
            state = await store.push.hold(conn, partner_id)
            if state is None or (state["retry_at"] is not None and state["retry_at"] > datetime.now(UTC)):
                return  # another process sends to this partner now, or it is not time yet
            for push in await store.push.waiting(conn, partner_id, _BATCH):
                error, refused = await self._send(state, push)
                if error is None:
                    await store.push.sent(conn, partner_id, push["id"], refused=refused)
                    metrics.PUSHES.labels("refused" if refused else "delivered").inc()
                    continue
                delay = min(self.settings.ocpi_push_retry_first_seconds * 2 ** min(state["failures"], 30),
                            self.settings.ocpi_push_retry_max_seconds)
                await store.push.failed(conn, partner_id, error=error, retry_at=datetime.now(UTC) + timedelta(seconds=delay))
                metrics.PUSHES.labels("retried").inc()
                return

    async def _send(self, state: asyncpg.Record, push: asyncpg.Record) -> tuple[str | None, str | None]:
        """(error to retry on, None) or (None, why it was refused for good, or None when delivered)."""
        if state["status"] != "REGISTERED":
            return None, "the partner is not registered"
        if push["path"].startswith(("http://", "https://")):
            url = push["path"]  # a URL the partner gave for this object (a command's response_url)
        else:
            base = next((e["url"] for e in state["endpoints"] if e["identifier"] == push["module"] and e["role"] == "RECEIVER"),
                        None)
            if base is None:
                return None, f"the partner has no {push['module']} RECEIVER endpoint any more"
            url = base.rstrip("/") + push["path"]
        try:
            answer = await client.call(self.app, push["method"], url, state["their_token"], body=push["body"],
                                       to=client.party_of(state["roles"]))
        except client.PartnerUnreachable as exc:
            return str(exc), None
        if answer.succeeded:
            return None, None
        if answer.http_status in _RETRY_HTTP or (answer.status_code is not None and answer.status_code >= 3000):
            return f"{push['method']} {url}: HTTP {answer.http_status}, status {answer.status_code}: {answer.message}", None
        log.warning("a partner refused a push", extra={"module": push["module"], "method": push["method"],
                                                       "http_status": answer.http_status, "status_code": answer.status_code})
        return None, f"{push['method']} {url}: HTTP {answer.http_status}, status {answer.status_code}: {answer.message}"


async def push_relay_ctx(app: web.Application) -> AsyncIterator[None]:
    relay = PushRelay(app)
    app[RELAY] = relay
    await relay.start()
    yield
    await relay.stop()
