"""Queues the commands service consumes: dispatch requests (its own outbox's messages) and the
CommandAck events the gateway reports through ingest."""
from __future__ import annotations

from uuid import UUID

import asyncpg

from services.commands import metrics, store
from services.commands.dispatcher import DISPATCHER
from shared.consumer import Message, each
from shared.domain import CommandRequested
from shared.events import CommandAck
from shared.service import Consumes
from shared.topology import COMMANDS_ACKS, COMMANDS_DISPATCH


async def dispatch_requested(conn: asyncpg.Connection, messages: list[Message]) -> list[UUID]:
    """Only marks the commands due; returns them for this process's dispatcher, which calls the
    gateway outside this transaction once it has committed."""
    due = []
    for message in messages:
        request = CommandRequested.model_validate(message.body)
        if await store.mark_due(conn, request.commandId):
            due.append(request.commandId)
    return due


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


CONSUMERS = (
    Consumes(COMMANDS_DISPATCH, dispatch_requested, after_commit=lambda app: app[DISPATCHER].hand_over),
    Consumes(COMMANDS_ACKS, each(command_acked)),
)
