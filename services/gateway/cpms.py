"""The one narrow client through which the gateway asks the CPMS anything, over its public
contract (CONTRACT section 1 and 7): a charger's handshake, an idTag's authorization, and events.

Events travel in batches: the events of calls that arrive within a short linger from many
chargers go to ingest as one JSON array (at most 1000). Each call is answered once the batch is
accepted (202). While ingest cannot take them (503, no connection) the batch is sent again with
backoff until each call's deadline, after which that call hears `IngestUnavailable`. A batch
refused (400) is sent again call by call, so one charger's unreadable event refuses only its own
call. One charger has one call in flight at a time, so its events keep their order."""
from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from services.gateway import metrics
from shared.futures import settle

log = logging.getLogger(__name__)
MAX_BATCH = 1000


class IngestUnavailable(Exception):
    """Ingest did not take the events (or answer) before the call's deadline."""


class EventsRefused(Exception):
    """Ingest refused the call's events (400): they cannot be attributed or applied."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(str(e.get("msg")) for e in errors) or "refused by ingest")
        self.errors = errors


@dataclass(frozen=True)
class Handshake:
    allowed: bool
    status: int
    retry_after: str | None = None


@dataclass
class _Pending:
    events: list[dict[str, Any]]
    deadline: float
    future: asyncio.Future = field(repr=False)


class CpmsClient:
    def __init__(self, session: aiohttp.ClientSession, *, base_url: str, api_key: str, linger: float,
                 max_batch: int = MAX_BATCH) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self.linger, self.max_batch = linger, max_batch
        self._pending: deque[_Pending] = deque()
        self._pending_events = 0
        self._flush_at: asyncio.Handle | None = None
        self._sending: set[asyncio.Task] = set()

    # --- handshake and authorization ---------------------------------------------------------

    async def check_handshake(self, charge_point_id: str, secret: str, remote_addr: str | None) -> Handshake:
        """Whether ingest lets this charger in. Raises IngestUnavailable when it cannot say."""
        body: dict[str, Any] = {"presentedSecret": secret}
        if remote_addr:
            body["remoteAddr"] = remote_addr
        status, _, headers = await self._post(f"/v1/gateway/chargers/{_quoted(charge_point_id)}/auth", body, timeout=10)
        if status == 200:
            return Handshake(True, 200)
        if status in (401, 429):
            return Handshake(False, status, headers.get("Retry-After"))
        if status == 400:  # an id or secret ingest cannot even read: refused like a wrong secret
            return Handshake(False, 401)
        raise IngestUnavailable(f"ingest answered {status} to a handshake")

    async def authorize(self, charge_point_id: str, id_tag: str, connector_id: int | None, *, deadline: float) -> dict[str, Any]:
        """The idTagInfo of `POST /v1/gateway/authorize`, retried until `deadline`."""
        body: dict[str, Any] = {"chargePointId": charge_point_id, "idTag": id_tag}
        if connector_id is not None:
            body["connectorId"] = connector_id
        attempt = 0
        while True:
            try:
                status, answer, _ = await self._post("/v1/gateway/authorize", body, timeout=max(deadline - time.monotonic(), 0.1))
                if status == 200 and isinstance(answer, dict) and isinstance(answer.get("idTagInfo"), dict):
                    return answer["idTagInfo"]
                if status == 400:  # nothing OCPP could hold: an idTag no token can match
                    return {"status": "Invalid"}
                reason = f"ingest answered {status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            attempt += 1
            if not await _backoff(attempt, deadline):
                raise IngestUnavailable(f"authorize: {reason}")

    async def is_reachable(self) -> bool:
        try:
            async with self.session.get(f"{self.base_url}/livez", timeout=aiohttp.ClientTimeout(total=2)) as answer:
                return answer.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    # --- events ------------------------------------------------------------------------------

    async def deliver(self, events: list[dict[str, Any]], *, deadline: float) -> None:
        """Return once ingest has taken every one of `events` (202); raise IngestUnavailable after
        `deadline` (time.monotonic()), or EventsRefused when ingest refuses them."""
        if not events:
            return
        loop = asyncio.get_running_loop()
        pending = _Pending(events, deadline, loop.create_future())
        self._pending.append(pending)
        self._pending_events += len(events)
        if self._pending_events >= self.max_batch:
            self._flush()
        elif self._flush_at is None:
            self._flush_at = loop.call_later(self.linger, self._flush) if self.linger else loop.call_soon(self._flush)
        await pending.future

    def _flush(self) -> None:
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        while self._pending:
            group: list[_Pending] = []
            size = 0
            while self._pending and (not group or size + len(self._pending[0].events) <= self.max_batch):
                entry = self._pending.popleft()
                group.append(entry)
                size += len(entry.events)
                self._pending_events -= len(entry.events)
            self._spawn(group)

    def _spawn(self, group: list[_Pending]) -> None:
        task = asyncio.create_task(self._send(group))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, group: list[_Pending]) -> None:
        attempt = 0
        while group:
            body = [event for entry in group for event in entry.events]
            try:
                status, answer, _ = await self._post("/v1/gateway/events", body, timeout=max(
                    min(entry.deadline for entry in group) - time.monotonic(), 0.1))
            except (aiohttp.ClientError, TimeoutError) as exc:
                status, answer, reason = None, None, f"{type(exc).__name__}: {exc}"
            else:
                reason = f"ingest answered {status}"
            if status == 202:
                for entry in group:
                    settle(entry.future)
                return
            if status == 400:
                if len(group) > 1:  # find the call refused: each on its own
                    for entry in group:
                        self._spawn([entry])
                else:
                    errors = answer.get("errors") if isinstance(answer, dict) else None
                    settle(group[0].future, EventsRefused(errors if isinstance(errors, list) else []))
                return
            attempt += 1
            if attempt == 1:
                log.warning("ingest did not take events; retrying", extra={"reason": reason, "events": len(body)})
            latest = max(entry.deadline for entry in group)
            if not await _backoff(attempt, latest):
                for entry in group:
                    settle(entry.future, IngestUnavailable(reason))
                return
            expired = [entry for entry in group if entry.deadline <= time.monotonic()]
            for entry in expired:
                settle(entry.future, IngestUnavailable(reason))
            group = [entry for entry in group if entry.deadline > time.monotonic()]

    async def _post(self, path: str, body: Any, *, timeout: float) -> tuple[int, Any, Any]:
        started = time.perf_counter()
        try:
            async with self.session.post(f"{self.base_url}{path}", data=orjson.dumps(body), headers=self.headers,
                                         timeout=aiohttp.ClientTimeout(total=timeout)) as answer:
                raw = await answer.read()
                try:
                    parsed = orjson.loads(raw) if raw else None
                except orjson.JSONDecodeError:
                    parsed = None
                return answer.status, parsed, answer.headers
        finally:
            metrics.INGEST_SECONDS.observe(time.perf_counter() - started)

    async def close(self) -> None:
        """Let the batches on their way finish (their calls are still waiting for them)."""
        self._flush()
        if self._sending:
            await asyncio.wait(self._sending)


async def _backoff(attempt: int, deadline: float) -> bool:
    """Sleep before attempt `attempt + 1` (exponential with jitter, at most 2 s); False when the
    deadline comes first."""
    pause = min(2.0, 0.05 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
    if time.monotonic() + pause >= deadline:
        return False
    await asyncio.sleep(pause)
    return True


def _quoted(charge_point_id: str) -> str:
    return quote(charge_point_id, safe="")
