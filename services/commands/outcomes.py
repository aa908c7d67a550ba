"""Commands other services order (`command.ordered`) and the outcome announced to them
(`command.finished`), written in the same transaction as the command's final status."""
from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from services.commands import store
from services.commands.models import FINAL_STATUSES, CommandRequest, new_command
from shared.config import CommandsSettings
from shared.consumer import Message, PermanentError
from shared.domain import CommandFinished, CommandOrdered, CommandRequested
from shared.http import Problem
from shared.outbox import enqueue_domain


async def announce(conn: asyncpg.Connection, row: asyncpg.Record | None, outcome: str) -> None:
    """Publish the outcome of an ordered command that has just become final (inside the caller's
    transaction)."""
    if row is None or not row["announce"] or row["status"] not in FINAL_STATUSES:
        return
    await enqueue_domain(conn, store.SCHEMA, finished_message(row, outcome))


def finished_message(row: asyncpg.Record, outcome: str) -> CommandFinished:
    response = row["response"]
    return CommandFinished(
        commandId=row["command_id"], idempotencyKey=row["idempotency_key"], type=row["type"],
        chargePointId=row["charge_point_id"], status=row["status"], outcome=outcome,
        response=response if isinstance(response, dict) else None, error=row["error"], at=datetime.now(UTC))


async def take_orders(conn: asyncpg.Connection, messages: list[Message], *, settings: CommandsSettings) -> None:
    """Store each ordered command with its dispatch message, as for an operator's; a payload that
    is not a valid command of its type can never be sent (dead-lettered with the problems). An
    order repeated after its command finished hears the outcome again."""
    for message in messages:
        order = CommandOrdered.model_validate(message.body)
        try:
            command = new_command(CommandRequest.model_validate(
                {"type": order.type, "chargePointId": order.chargePointId, "idempotencyKey": order.idempotencyKey,
                 "payload": order.payload}))
        except Problem as exc:
            raise PermanentError(f"{exc.detail}: {exc.errors}") from exc
        row, created = await store.create_command(conn, command, ttl_seconds=order.ttlSeconds or settings.command_ttl_seconds,
                                                  announce=True)
        if created:
            await enqueue_domain(conn, store.SCHEMA, CommandRequested(commandId=row["command_id"]))
        elif row["status"] in FINAL_STATUSES and row["announce"]:
            await enqueue_domain(conn, store.SCHEMA, finished_message(row, await store.final_outcome(conn, row["command_id"])))
