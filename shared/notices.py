"""Read your writes across services (CONTRACT section 3): a write whose copy lives in another
service (a charger's registration, a settlement's status, shown by sessions) answers once that
copy is applied.

The copy's keeper publishes `copy.applied` with the ids of the messages it applied, in the same
transaction (its outbox); every writing process listens on a queue of its own and wakes the
request waiting for those ids. A notice lost or late only delays the answer, up to
`CPMS_READ_YOUR_WRITES_TIMEOUT_SECONDS`: the write itself is already committed and announced."""
from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Iterable

from aio_pika.abc import AbstractIncomingMessage

from shared.broker import Broker, close_quietly
from shared.consumer import PermanentError, decode
from shared.domain import CopyApplied
from shared.topology import DOMAIN, Queue

log = logging.getLogger(__name__)


class AppliedNotices:
    """`await notices.applied(notices.expect(message_ids, keeper), keeper)` returns when the copy
    `keeper` keeps holds every one. Notices are told apart by keeper, so a write copied by several
    services waits for each of them."""

    RECENT = 10_000  # notices kept for a request that registers its interest a moment late

    def __init__(self, broker: Broker, *, timeout: float) -> None:
        self.broker, self.timeout = broker, timeout
        self._waiting: dict[tuple[str, str], asyncio.Future] = {}
        self._recent: OrderedDict[tuple[str, str | None], None] = OrderedDict()
        self._channel = None

    async def start(self) -> None:
        self._channel = await self.broker.consumer_channel(prefetch=256)
        exchange = await self._channel.get_exchange(DOMAIN.name(self.broker.prefix), ensure=False)
        # This process's own queue: transient by design (a notice only wakes a waiting request).
        queue = await self._channel.declare_queue(exclusive=True, auto_delete=True, durable=False)
        await queue.bind(exchange, routing_key=CopyApplied.routing_key)
        await queue.consume(self._on_notice, no_ack=True)

    async def stop(self) -> None:
        for future in self._waiting.values():
            future.cancel()
        await close_quietly(self._channel, "notice channel")

    async def _on_notice(self, raw: AbstractIncomingMessage) -> None:
        try:
            messages = decode(raw)
        except PermanentError:
            return
        for message in messages:
            keeper = message.body.get("keeper")
            for message_id in message.body.get("messageIds", []):
                waiting = [key for key in self._waiting if key[0] == message_id] if keeper is None else [(message_id, keeper)]
                for key in waiting:
                    future = self._waiting.pop(key, None)
                    if future is not None and not future.done():
                        future.set_result(None)
                self._recent[(message_id, keeper)] = None
                if len(self._recent) > self.RECENT:
                    self._recent.popitem(last=False)

    async def _anyone_applies(self, keeper: Queue) -> bool:
        """False when no process consumes the keeper's queue (sessions not running): nobody will answer."""
        try:
            async with asyncio.timeout(2):
                channel = await self.broker.connection.channel()
                try:
                    declared = await channel.declare_queue(keeper.name(self.broker.prefix), passive=True)
                    return (declared.declaration_result.consumer_count or 0) > 0
                finally:
                    await channel.close()
        except Exception:
            return False

    def expect(self, message_ids: Iterable[str], keeper: Queue) -> list[asyncio.Future]:
        """Register interest in `keeper`'s notices of these messages (right after the commit)."""
        loop = asyncio.get_running_loop()
        futures = []
        for message_id in message_ids:
            key = (message_id, keeper.key)
            future = self._waiting.setdefault(key, loop.create_future())
            if key in self._recent or (message_id, None) in self._recent:
                self._waiting.pop(key)
                future.set_result(None)
            futures.append(future)
        return futures

    async def applied(self, futures: list[asyncio.Future], keeper: Queue) -> bool:
        """Wait for the expected notices from the consumers of `keeper`; False when they did not
        come in time (logged)."""
        if not futures:
            return True
        if not self.broker.is_connected or not await self._anyone_applies(keeper):
            self._forget(futures)
            return False
        try:
            async with asyncio.timeout(self.timeout):
                await asyncio.gather(*futures)
            return True
        except TimeoutError:
            log.warning("a copy did not confirm a write in time", extra={"queue": keeper.key, "timeout": self.timeout})
            self._forget(futures)
            return False

    def _forget(self, futures: list[asyncio.Future]) -> None:
        for key, future in list(self._waiting.items()):
            if future in futures:
                del self._waiting[key]



