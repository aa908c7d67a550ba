"""Real-time authorization of a roaming partner's token (OCPI 2.2.1 mod_tokens, "Real-time
authorization"), asked over RabbitMQ: the sessions service asks, the ocpi service (which holds the
partners' endpoints and credentials) asks the partner and answers. One question, one answer, within
a bound; no answer in time is an answer too (`None`), and the asker treats it as the contract says.

The ocpi processes consume one transient queue, `<prefix>.ocpi.authorize`, which they declare
themselves (not a quorum queue: a question outlives its asker's patience by seconds at most). A
question published while no ocpi process is there comes back at once (mandatory), so a CPMS run
without the ocpi service never waits for it."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Literal

import aio_pika
import orjson
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage, AbstractQueue
from aio_pika.exceptions import DeliveryError
from aiohttp import web
from pydantic import BaseModel, ConfigDict

from shared.app import BROKER
from shared.broker import Broker, close_quietly
from shared.domain import PartnerTokenRef
from shared.futures import AwaitedReplies
from shared.topology import RPC

log = logging.getLogger(__name__)

ROUTING_KEY = "token.authorize"
BOUND_SECONDS = 5.0  # CONTRACT 12: a partner that has not answered by then did not answer


def queue_name(prefix: str) -> str:
    return f"{prefix}.ocpi.authorize"


class AuthorizationAsked(BaseModel):
    """May the token `uid` charge at this charger? `known`: the asker has the token in its copy
    (then only its owner is asked), else every partner that offers real-time authorization is."""

    model_config = ConfigDict(frozen=True)
    uid: str
    chargePointId: str
    connectorId: int | None = None
    known: PartnerTokenRef | None = None
    deadline: float  # time.time() after which nobody waits for the answer any more


# OCPP 1.6's idTagInfo status, or Unknown: no partner knows the token.
Verdict = Literal["Accepted", "Blocked", "Expired", "Invalid", "Unknown"]


class AuthorizationAnswer(BaseModel):
    model_config = ConfigDict(frozen=True)
    status: Verdict
    partnerToken: PartnerTokenRef | None = None  # the token that answered (its party)
    authorizationReference: str | None = None


class RealtimeAuthorizer:
    """The asking side: `await ask(...)` is the answer, or None when none came within the bound
    (or nobody was there to ask)."""

    def __init__(self, broker: Broker, *, bound_seconds: float = BOUND_SECONDS) -> None:
        self.broker, self.bound_seconds = broker, bound_seconds
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._replies: AbstractQueue | None = None
        self._waiting = AwaitedReplies()
        self._lock = asyncio.Lock()

    async def _ready(self) -> tuple[AbstractExchange, AbstractQueue]:
        async with self._lock:
            if self._exchange is None or self._channel is None or self._channel.is_closed:
                if not self.broker.is_connected:
                    raise ConnectionError("broker not connected")
                channel = await self.broker.connection.channel(publisher_confirms=True, on_return_raises=True)
                self._exchange = await channel.get_exchange(RPC.name(self.broker.prefix), ensure=False)
                self._replies = await channel.declare_queue(exclusive=True, auto_delete=True)
                await self._replies.consume(self._on_reply, no_ack=True)
                self._channel = channel
            return self._exchange, self._replies

    async def ask(self, uid: str, *, charge_point_id: str, connector_id: int | None,
                  known: PartnerTokenRef | None) -> AuthorizationAnswer | None:
        started = time.monotonic()
        asked = AuthorizationAsked(uid=uid, chargePointId=charge_point_id, connectorId=connector_id, known=known,
                                   deadline=time.time() + self.bound_seconds)
        correlation_id, answer = self._waiting.expect()
        try:
            async with asyncio.timeout(self.bound_seconds):
                exchange, replies = await self._ready()
                await exchange.publish(
                    aio_pika.Message(orjson.dumps(asked.model_dump(mode="json")), correlation_id=correlation_id,
                                     reply_to=replies.name, expiration=self.bound_seconds),
                    routing_key=ROUTING_KEY, mandatory=True)
                return AuthorizationAnswer.model_validate(await answer)
        except DeliveryError:
            log.warning("real-time authorization: no ocpi process to ask")
            return None
        except TimeoutError:
            log.warning("real-time authorization: no answer within the bound",
                        extra={"seconds": round(time.monotonic() - started, 3)})
            return None
        except Exception as exc:  # the broker away: no answer
            log.warning("real-time authorization could not be asked", extra={"error": repr(exc)})
            return None
        finally:
            self._waiting.forget(correlation_id)

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        try:
            self._waiting.answer(message.correlation_id, result=orjson.loads(message.body))
        except orjson.JSONDecodeError as exc:
            self._waiting.answer(message.correlation_id, exc)

    async def close(self) -> None:
        await close_quietly(self._channel, "real-time authorization channel")


Answerer = Callable[[AuthorizationAsked], Awaitable[AuthorizationAnswer | None]]


class AuthorizationDesk:
    """The answering side: takes questions from the shared queue and answers each (concurrently)
    with `answer(asked)`; a question whose asker stopped waiting is dropped."""

    def __init__(self, broker: Broker, answer: Answerer) -> None:
        self.broker, self.answer = broker, answer
        self._channel: AbstractChannel | None = None
        self._tasks: set[asyncio.Task] = set()

    @property
    def is_running(self) -> bool:
        return self._channel is not None and not self._channel.is_closed

    async def start(self) -> None:
        channel = await self.broker.connection.channel()
        await channel.set_qos(prefetch_count=64)
        exchange = await channel.get_exchange(RPC.name(self.broker.prefix), ensure=False)
        queue = await channel.declare_queue(queue_name(self.broker.prefix), durable=False, auto_delete=True,
                                            arguments={"x-message-ttl": int(BOUND_SECONDS * 1000)})
        await queue.bind(exchange, routing_key=ROUTING_KEY)
        await queue.consume(self._on_question)
        self._channel = channel

    async def _on_question(self, message: AbstractIncomingMessage) -> None:
        await message.ack()  # an asker whose answer is lost asks no more: it has its answer (none)
        task = asyncio.create_task(self._answer(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, message: AbstractIncomingMessage) -> None:
        try:
            asked = AuthorizationAsked.model_validate_json(message.body)
        except ValueError:
            log.warning("unreadable real-time authorization question dropped")
            return
        if time.time() >= asked.deadline or not message.reply_to:
            return
        try:
            async with asyncio.timeout(max(asked.deadline - time.time(), 0.0)):
                answer = await self.answer(asked)
        except TimeoutError:
            return
        except Exception:
            log.exception("real-time authorization failed")
            return
        if answer is None or self._channel is None or self._channel.is_closed:
            return
        await self._channel.default_exchange.publish(
            aio_pika.Message(orjson.dumps(answer.model_dump(mode="json")), correlation_id=message.correlation_id),
            routing_key=message.reply_to)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await close_quietly(self._channel, "authorization desk")


REALTIME_AUTHORIZER = web.AppKey("realtime_authorizer", RealtimeAuthorizer)


async def realtime_authorizer_ctx(app: web.Application) -> AsyncIterator[None]:
    """The process's asking side, for the handlers and consumers that authorize idTags."""
    authorizer = app[REALTIME_AUTHORIZER] = RealtimeAuthorizer(app[BROKER])
    yield
    await authorizer.close()
