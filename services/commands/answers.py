"""How an ordered command ended (`command.answered`), told in the transaction that makes it final,
so the service that ordered it learns the outcome exactly once."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg

from services.commands import store
from services.commands.models import CommandStatus
from shared.domain import CommandAnswered, CommandOutcome
from shared.outbox import enqueue_domain_many


def outcome_of(status: str, result: str | None) -> CommandOutcome:
    """`result`: the last attempt's (services/commands/gateway.py), None when no request left for it."""
    if status == CommandStatus.ACKED:
        return "Answered"
    if result in ("rejected", "call_error"):
        return "Refused"
    if result in ("timeout", "unknown"):
        return "Unknown"
    return "NotDelivered"


async def announce(conn: asyncpg.Connection, rows: Sequence[asyncpg.Record | None], result: str | None) -> None:
    """The answers of the final commands among `rows` that were ordered with one wanted."""
    answered = [
        CommandAnswered(commandId=row["command_id"], idempotencyKey=row["idempotency_key"], type=row["type"],
                        chargePointId=row["charge_point_id"], outcome=outcome_of(row["status"], result),
                        response=row["response"] if isinstance(row["response"], dict) else None, error=row["error"],
                        at=datetime.now(UTC))
        for row in rows
        if row is not None and row["answer_wanted"] and row["status"] in (CommandStatus.ACKED, CommandStatus.FAILED)
    ]
    await enqueue_domain_many(conn, store.SCHEMA, answered)
