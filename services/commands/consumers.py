"""Queues the commands service consumes: dispatch requests (its own outbox's messages), the
CommandAck events the gateway reports through ingest, the sessions that must be stopped
because their idTag was not Accepted, and the commands other services order (charging profiles
for a site's power limit), whose outcome goes back to them."""
from __future__ import annotations

from uuid import UUID

import asyncpg

from services.commands import metrics, store
from services.commands.dispatcher import DISPATCHER
from services.commands.models import CommandRequest, NewCommand, new_command
from shared.config import CommandsSettings
from shared.consumer import Message, each
from shared.domain import CommandOrdered, CommandRequested, SessionUnauthorized
from shared.events import CommandAck
from shared.outbox import enqueue_domain
from shared.operators import copy_of_operators
from shared.service import Consumes
from shared.topology import COMMANDS_ACKS, COMMANDS_DISPATCH, COMMANDS_OPERATORS, COMMANDS_ORDERED, COMMANDS_UNAUTHORIZED


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


async def stop_unauthorized(conn: asyncpg.Connection, messages: list[Message], *, settings: CommandsSettings) -> None:
    """One RemoteStopTransaction per unauthorized session: the idempotency key comes from the
    session, so a repeated message makes no second command."""
    for message in messages:
        unauthorized = SessionUnauthorized.model_validate(message.body)
        command = NewCommand(type="RemoteStopTransaction", chargePointId=unauthorized.chargePointId,
                             idempotencyKey=unauthorized.idempotency_key, payload={"transactionId": unauthorized.transactionId})
        await _queue(conn, command, settings=settings)


async def queue_ordered(conn: asyncpg.Connection, messages: list[Message], *, settings: CommandsSettings) -> None:
    """A command another service ordered, checked as an operator's is (a payload that breaks its
    OCPP 1.6 schema is that service's bug: dead-lettered), and answered when final."""
    for message in messages:
        ordered = CommandOrdered.model_validate(message.body)
        command = new_command(CommandRequest(type=ordered.type, chargePointId=ordered.chargePointId,
                                             idempotencyKey=ordered.idempotencyKey, payload=ordered.payload))
        await _queue(conn, command, settings=settings, answer_wanted=True)


async def _queue(conn: asyncpg.Connection, command: NewCommand, *, settings: CommandsSettings, answer_wanted: bool = False) -> None:
    row, created = await store.create_command(conn, command, ttl_seconds=settings.command_ttl_seconds, answer_wanted=answer_wanted)
    if created:  # its dispatch message, in the same transaction, as for an operator's command
        await enqueue_domain(conn, store.SCHEMA, CommandRequested(commandId=row["command_id"]))


CONSUMERS = (
    Consumes(COMMANDS_DISPATCH, dispatch_requested, after_commit=lambda app: app[DISPATCHER].hand_over),
    Consumes(COMMANDS_ACKS, each(command_acked)),
    Consumes(COMMANDS_UNAUTHORIZED, stop_unauthorized, wakes_outbox=True, takes_settings=True),
    Consumes(COMMANDS_ORDERED, queue_ordered, wakes_outbox=True, takes_settings=True),
    copy_of_operators("commands", COMMANDS_OPERATORS),
)
