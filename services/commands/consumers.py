"""Queues the commands service consumes: dispatch requests (its own outbox's messages) and the
CommandAck events the gateway reports through ingest."""
from __future__ import annotations

import asyncpg

from services.commands import metrics, store
from services.commands.dispatcher import Dispatcher
from shared.consumer import Handler, Message
from shared.domain import CommandRequested
from shared.events import CommandAck


def dispatch_requested(dispatcher: Dispatcher) -> Handler:
    """Only marks the command due: the gateway is called by the dispatcher, outside this transaction."""

    async def handle(conn: asyncpg.Connection, message: Message) -> None:
        request = CommandRequested.model_validate(message.body)
        if await store.mark_due(conn, request.commandId):
            dispatcher.expect(request.commandId)

    return handle


async def command_acked(conn: asyncpg.Connection, message: Message) -> None:
    ack = CommandAck.model_validate(message.body)
    if ack.uniqueId is None or ack.commandType is None:
        metrics.ACKS.labels("unusable").inc()  # flagged by ingest and archived; nothing to link it to
        return
    linked = await store.record_ack(
        conn, charge_point_id=ack.chargePointId, unique_id=ack.uniqueId, command_type=ack.commandType,
        acked_at=ack.at, event_id=ack.eventId or message.message_id,
    )
    metrics.ACKS.labels("linked" if linked else "stored").inc()
