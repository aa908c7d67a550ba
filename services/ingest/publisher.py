"""Publishing accepted events with group commit: the events of requests that arrive while earlier
ones wait for their confirm travel together in one envelope, and so do those that arrive within
a short linger of the first one. Under load the broker stores one message per group, not per
event; at a steady moderate rate the linger fills envelopes that would hold one request each."""
from __future__ import annotations

import asyncio
from collections import deque

from services.ingest import metrics
from services.ingest.intake import Accepted
from shared.broker import Broker, PublishFailed
from shared.futures import settle
from shared.topology import EVENTS


class EventPublisher:
    """`publish(events)` returns once the broker has confirmed every event, or raises PublishFailed.
    At most `max_in_flight` envelopes wait for their confirm at a time. Two measured best: with one,
    a request often waited for the confirm before its own (a higher p99 at a steady 1,000 events/s);
    with four, envelopes were smaller and the broker busier for no more throughput."""

    def __init__(self, broker: Broker, *, max_in_flight: int = 2, max_events: int = 1000, linger: float = 0.0,
                 full: int = 64) -> None:
        self.broker = broker
        self.max_in_flight, self.max_events = max_in_flight, max_events
        self.linger, self.full = linger, full
        self._pending: deque[tuple[list[Accepted], asyncio.Future]] = deque()
        self._pending_events = 0
        self._sending: set[asyncio.Task] = set()
        self._in_flight = 0
        self._flush_at: asyncio.Handle | None = None

    async def publish(self, events: list[Accepted]) -> None:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((events, future))
        self._pending_events += len(events)
        if self._pending_events >= self.full:
            if self._flush_at is not None:
                self._flush_at.cancel()
            self._flush_at = loop.call_soon(self._flush)  # full enough: no reason to wait
        elif self._flush_at is None:
            # At the earliest on the next turn of the loop, so the requests read in this one go
            # together; at the latest `linger` after the first, so those right behind it do too.
            self._flush_at = loop.call_later(self.linger, self._flush) if self.linger else loop.call_soon(self._flush)
        await future

    def _flush(self) -> None:
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        while self._pending and self._in_flight < self.max_in_flight:
            group, size = [], 0
            while self._pending and (not group or size + len(self._pending[0][0]) <= self.max_events):
                entry = self._pending.popleft()
                group.append(entry)
                size += len(entry[0])
                self._pending_events -= len(entry[0])
            self._in_flight += 1
            task = asyncio.create_task(self._send(group))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, group: list[tuple[list[Accepted], asyncio.Future]]) -> None:
        failure: PublishFailed | None = None
        try:
            lanes: dict[str, list[tuple[str, bytes]]] = {}
            for events, _ in group:
                for event in events:
                    lanes.setdefault(event.routing_key, []).append((event.event_id, event.encoded))
            publishes = [self._publish_envelope(key, bodies) for key, bodies in lanes.items()]
            if len(publishes) == 1:  # the usual case: awaited directly, without a task of its own
                await publishes[0]
            else:
                await asyncio.gather(*publishes)
        except Exception as exc:
            failure = exc if isinstance(exc, PublishFailed) else PublishFailed(f"{type(exc).__name__}: {exc}")
        finally:
            # The slot is free: send what waited for it now, before this group's requests wake
            # (their answers take turns of the loop that the next envelope need not wait for).
            self._in_flight -= 1
            self._flush()
        for _, future in group:
            settle(future, failure)

    async def _publish_envelope(self, routing_key: str, events: list[tuple[str, bytes]]) -> None:
        await self.broker.publish_envelope(EVENTS.key, routing_key, events)
        metrics.ENVELOPE_EVENTS.observe(len(events))

    async def close(self) -> None:
        """Let the envelopes on their way get their confirms (their requests are still waiting)."""
        if self._sending:
            await asyncio.wait(self._sending, timeout=self.broker.publish_timeout + 1)
