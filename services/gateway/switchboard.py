"""Which charger is connected where, so that several gateway processes act as one.

Each process holds the WebSockets of its chargers and, on RabbitMQ, one transient queue of its
own (exclusive, auto-delete, named with CPMS_AMQP_PREFIX), bound to the direct exchange
`<prefix>.gateway` with routing key = chargePointId for as long as that charger is connected here.
- A command for a charger held here goes straight to its socket. One held elsewhere is published
  to the exchange (mandatory, with reply_to and correlation_id): the holding process delivers it
  and replies; a message that no queue takes comes back to us: the charger is not connected (502).
- A charger that connects here is taken over: a `takeover` notice to its routing key tells the
  process that held it before to close that connection (a second connection replaces the first,
  across processes too), then our queue binds the key."""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import orjson
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection
from aio_pika.exceptions import DeliveryError

from services.gateway.charge_point import ChargerConnection
from shared.broker import close_quietly
from shared.futures import AwaitedReplies
from shared.topology import GATEWAY

log = logging.getLogger(__name__)
REPLACED = "replaced by a newer connection"
Delivery = Callable[[str, str, dict[str, Any]], Awaitable[tuple[int, dict[str, Any]]]]  # (cp, type, payload) -> (status, body)
_KIND = "x-cpms-kind"
_FROM = "x-cpms-from"


class Switchboard:
    def __init__(self, amqp_url: str, prefix: str, *, command_timeout: float) -> None:
        self.amqp_url, self.prefix, self.command_timeout = amqp_url, prefix, command_timeout
        self.local: dict[str, ChargerConnection] = {}
        self.sent_away = False  # shutting down: every connection was closed with 1001
        self.queue_name = f"{prefix}.gateway.{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.connection: AbstractRobustConnection | None = None
        self._exchange: AbstractExchange | None = None
        self._queue: AbstractQueue | None = None
        self._replying: AbstractChannel | None = None
        self._replies = AwaitedReplies()
        self._deliver_here: Delivery | None = None
        self._tasks: set[asyncio.Task] = set()

    @property
    def is_connected(self) -> bool:
        return self.connection is not None and not self.connection.is_closed and self.connection.connected.is_set()

    async def connect(self, deliver_here: Delivery) -> None:
        """One attempt (the caller retries): connect, declare the exchange and our queue, consume it.
        `deliver_here` delivers a command to a charger held by this process."""
        self._deliver_here = deliver_here
        connection = await aio_pika.connect_robust(self.amqp_url, client_properties={"connection_name": f"cpms-gateway:{self.prefix}"})
        try:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            self._exchange = await channel.declare_exchange(GATEWAY.name(self.prefix), GATEWAY.type, durable=True)
            self._queue = await channel.declare_queue(self.queue_name, exclusive=True, auto_delete=True)
            self._replying = await connection.channel()
            await self._queue.consume(self._on_message, no_ack=True)
        except BaseException:
            await connection.close()
            raise
        self.connection = connection

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await close_quietly(self.connection, "gateway broker")

    # --- connections -------------------------------------------------------------------------

    async def hold(self, connection: ChargerConnection) -> None:
        """`connection` is now the charger's: an older one here or elsewhere is closed."""
        cp = connection.id
        older = self.local.get(cp)
        if older is not None:
            await older.close(1000, REPLACED)
            await older.ended.wait()
        self.local[cp] = connection
        if self._exchange is not None and self._queue is not None:
            try:
                notice = aio_pika.Message(b"{}", headers={_KIND: "takeover", _FROM: self.queue_name})
                await self._exchange.publish(notice, routing_key=cp, mandatory=False)
                await self._queue.bind(self._exchange, routing_key=cp)
            except Exception as exc:  # the broker is away: commands from other processes fail (502) meanwhile
                log.warning("could not announce a charger on the broker", extra={"charge_point_id": cp, "error": repr(exc)})

    async def release(self, connection: ChargerConnection) -> bool:
        """The connection ended; True when it was the charger's current one."""
        cp = connection.id
        if self.local.get(cp) is not connection:
            return False
        del self.local[cp]
        if self._exchange is not None and self._queue is not None and self.is_connected:
            try:
                await self._queue.unbind(self._exchange, routing_key=cp)
            except Exception as exc:
                log.warning("could not withdraw a charger from the broker", extra={"charge_point_id": cp, "error": repr(exc)})
        return True

    # --- commands ----------------------------------------------------------------------------

    async def deliver(self, cp: str, command_type: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body) of delivering a command, wherever the charger is connected."""
        assert self._deliver_here is not None
        if cp in self.local or self._exchange is None:
            return await self._deliver_here(cp, command_type, payload)
        correlation_id, reply = self._replies.expect()
        message = aio_pika.Message(
            orjson.dumps({"type": command_type, "payload": payload}), headers={_KIND: "command"},
            correlation_id=correlation_id, reply_to=self.queue_name, expiration=self.command_timeout,
        )
        try:
            try:
                await self._exchange.publish(message, routing_key=cp, mandatory=True, timeout=5)
            except DeliveryError:  # returned: no process holds the charger
                return not_connected(cp)
            except Exception as exc:
                log.warning("could not route a command through the broker", extra={"charge_point_id": cp, "error": repr(exc)})
                return not_connected(cp)
            try:
                async with asyncio.timeout(self.command_timeout + 2):
                    return await reply
            except TimeoutError:
                return 502, {"title": "No answer", "detail": f"charger {cp} did not answer in time"}
        finally:
            self._replies.forget(correlation_id)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        kind = (message.headers or {}).get(_KIND)
        if kind == "reply":
            answer = orjson.loads(message.body)
            self._replies.answer(message.correlation_id, result=(answer["status"], answer["body"]))
        elif kind == "takeover" and message.routing_key in self.local and (message.headers or {}).get(_FROM) != self.queue_name:
            self._spawn(self._close_taken_over(message.routing_key))
        elif kind == "command" and message.routing_key:
            self._spawn(self._deliver_for_another(message))

    async def _close_taken_over(self, cp: str) -> None:
        connection = self.local.get(cp)
        if connection is not None:
            await self.release(connection)
            await connection.close(1000, REPLACED)

    async def _deliver_for_another(self, message: AbstractIncomingMessage) -> None:
        assert self._deliver_here is not None and self._replying is not None
        command = orjson.loads(message.body)
        status, body = await self._deliver_here(message.routing_key, command["type"], command["payload"])
        await self._replying.default_exchange.publish(
            aio_pika.Message(orjson.dumps({"status": status, "body": body}), headers={_KIND: "reply"},
                             correlation_id=message.correlation_id),
            routing_key=message.reply_to or "")

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def not_connected(cp: str) -> tuple[int, dict[str, Any]]:
    return 502, {"title": "Charger not connected", "detail": f"charger {cp} is not connected to the gateway"}
