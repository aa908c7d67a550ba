"""SQL of the commands schema: commands, their delivery attempts, and charger acknowledgements."""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.commands.models import OPEN_STATUSES, CommandStatus, NewCommand

SCHEMA = "commands"
_COLUMNS = (
    "command_id, type, charge_point_id, idempotency_key, fingerprint, payload, status, response, error, attempts, "
    "gateway_command_id, acked_at, expires_at, answer_wanted, created_at, updated_at"
)
_FREE = "(lease_until IS NULL OR lease_until < now())"


async def create_command(conn: asyncpg.Connection, command: NewCommand, *, ttl_seconds: float,
                         answer_wanted: bool = False) -> tuple[asyncpg.Record, bool]:
    """Store the command. Returns (row, created); an existing idempotency key gives the stored row
    and False. `answer_wanted`: its outcome is announced when final (services/commands/answers.py)."""
    async with conn.transaction():
        row = await conn.fetchrow(
            f"""
            INSERT INTO commands.commands
                (command_id, type, charge_point_id, idempotency_key, fingerprint, payload, status, expires_at, answer_wanted)
            VALUES ($1, $2, $3, $4, $5, $6::jsonb, $8, now() + make_interval(secs => $7), $9)
            ON CONFLICT (idempotency_key) DO NOTHING
            RETURNING {_COLUMNS}
            """,
            uuid.uuid4(), command.type, command.chargePointId, command.idempotencyKey, command.fingerprint,
            command.payload, ttl_seconds, CommandStatus.QUEUED, answer_wanted,
        )
        if row is not None:
            return row, True
    existing = await conn.fetchrow(f"SELECT {_COLUMNS} FROM commands.commands WHERE idempotency_key = $1", command.idempotencyKey)
    return existing, False


async def get_command(conn: asyncpg.Connection, command_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {_COLUMNS} FROM commands.commands WHERE command_id = $1", command_id)


async def list_commands(
    conn: asyncpg.Connection, *, charge_point_id: str | None, status: str | None, limit: int,
    after: tuple[datetime, str] | None,
) -> list[asyncpg.Record]:
    """Newest first, `limit + 1` rows, starting after the cursor's (createdAt, commandId)."""
    return await conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM commands.commands
        WHERE ($1::text IS NULL OR charge_point_id = $1)
          AND ($2::text IS NULL OR status = $2)
          AND ($3::timestamptz IS NULL OR (created_at, command_id) < ($3, $4::uuid))
        ORDER BY created_at DESC, command_id DESC
        LIMIT $5
        """,
        charge_point_id, status, after[0] if after else None, after[1] if after else None, limit + 1,
    )


async def mark_due(conn: asyncpg.Connection, command_id: UUID) -> bool:
    """The dispatch message arrived: the command may be sent from now on (once; a repeat changes nothing)."""
    done = await conn.execute(
        "UPDATE commands.commands SET due_at = now() WHERE command_id = $1 AND due_at IS NULL AND status = $2",
        command_id, CommandStatus.QUEUED,
    )
    return done != "UPDATE 0"


async def claim(
    conn: asyncpg.Connection, *, owner: UUID, lease_seconds: float, limit: int,
    command_ids: list[UUID] | None = None, overdue_seconds: float = 0.0,
) -> list[asyncpg.Record]:
    """Take due, unleased commands for this dispatcher: the given ids, or (without ids) every
    command due for longer than `overdue_seconds`, which no live dispatcher is looking after."""
    return await conn.fetch(
        f"""
        UPDATE commands.commands c SET lease_owner = $1, lease_until = now() + make_interval(secs => $2)
        WHERE c.command_id IN (
            SELECT command_id FROM commands.commands
            WHERE status = $6 AND due_at IS NOT NULL AND {_FREE}
              AND ($4::uuid[] IS NULL OR command_id = ANY($4::uuid[]))
              AND ($4::uuid[] IS NOT NULL OR due_at < now() - make_interval(secs => $5))
            ORDER BY due_at LIMIT $3
            FOR UPDATE SKIP LOCKED
        )
        RETURNING {_COLUMNS}, now() >= expires_at AS expired
        """,
        owner, lease_seconds, limit, command_ids, overdue_seconds, CommandStatus.QUEUED,
    )


async def begin_attempt(conn: asyncpg.Connection, command_id: UUID, *, owner: UUID, lease_seconds: float) -> int | None:
    """Record an attempt before sending it; None when this dispatcher no longer holds the command."""
    async with conn.transaction():
        attempt = await conn.fetchval(
            """
            UPDATE commands.commands
            SET status = $4, attempts = attempts + 1, lease_until = now() + make_interval(secs => $3), updated_at = now()
            WHERE command_id = $1 AND lease_owner = $2 AND status = $5
            RETURNING attempts
            """,
            command_id, owner, lease_seconds, CommandStatus.SENT, CommandStatus.QUEUED,
        )
        if attempt is not None:
            await conn.execute("INSERT INTO commands.attempts (command_id, attempt) VALUES ($1, $2)", command_id, attempt)
        return attempt


async def _finish_attempt(
    conn: asyncpg.Connection, command_id: UUID, attempt: int, result: str, http_status: int | None, error: str | None,
) -> None:
    await conn.execute(
        "UPDATE commands.attempts SET finished_at = now(), result = $3, http_status = $4, error = $5 "
        "WHERE command_id = $1 AND attempt = $2",
        command_id, attempt, result, http_status, error,
    )


async def record_acked(
    conn: asyncpg.Connection, command_id: UUID, attempt: int, *, owner: UUID, http_status: int,
    response: Any, gateway_command_id: str | None,
) -> asyncpg.Record | None:
    """The gateway delivered the command and returned the charger's answer; an ack event that
    came before this answer is linked now."""
    async with conn.transaction():
        await _finish_attempt(conn, command_id, attempt, "acked", http_status, None)
        return await conn.fetchrow(
            f"""
            UPDATE commands.commands c SET status = $5, response = $3::jsonb, gateway_command_id = $4,
                acked_at = (SELECT a.acked_at FROM commands.acks a WHERE a.charge_point_id = c.charge_point_id AND a.unique_id = $4),
                error = NULL, lease_until = NULL, lease_owner = NULL, updated_at = now()
            WHERE command_id = $1 AND lease_owner = $2 AND status = $6
            RETURNING {_COLUMNS}
            """,
            command_id, owner, response, gateway_command_id, CommandStatus.ACKED, CommandStatus.SENT,
        )


async def record_failed(
    conn: asyncpg.Connection, command_id: UUID, attempt: int | None, *, owner: UUID, result: str | None,
    error: str, http_status: int | None = None, response: Any = None, gateway_command_id: str | None = None,
) -> asyncpg.Record | None:
    """A final failure; `attempt` None when no request was made for this decision. `response` is
    what the charger answered, when it answered (a CallError)."""
    async with conn.transaction():
        if attempt is not None:
            await _finish_attempt(conn, command_id, attempt, result, http_status, error)
        return await conn.fetchrow(
            f"""
            UPDATE commands.commands SET status = $4, error = $3, response = $6::jsonb,
                gateway_command_id = COALESCE($7, gateway_command_id), lease_until = NULL, lease_owner = NULL, updated_at = now()
            WHERE command_id = $1 AND lease_owner = $2 AND status = ANY($5::text[])
            RETURNING {_COLUMNS}
            """,
            command_id, owner, error, CommandStatus.FAILED, OPEN_STATUSES, response, gateway_command_id,
        )


async def record_unavailable(
    conn: asyncpg.Connection, command_id: UUID, attempt: int, *, owner: UUID, error: str, http_status: int | None,
    hold_seconds: float,
) -> None:
    """The gateway could not deliver: back to Queued, still held by this dispatcher for the backoff."""
    async with conn.transaction():
        await _finish_attempt(conn, command_id, attempt, "unavailable", http_status, error)
        await conn.execute(
            """
            UPDATE commands.commands SET status = $5, error = $3, lease_until = now() + make_interval(secs => $4),
                updated_at = now()
            WHERE command_id = $1 AND lease_owner = $2 AND status = $6
            """,
            command_id, owner, error, hold_seconds, CommandStatus.QUEUED, CommandStatus.SENT,
        )


async def fail_abandoned(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Sends whose dispatcher died before the outcome was recorded: the charger may have acted,
    so they fail as "outcome unknown" and are never sent again."""
    async with conn.transaction():
        rows = await conn.fetch(
            f"""
            UPDATE commands.commands SET status = $1, lease_until = NULL, lease_owner = NULL, updated_at = now(),
                error = 'outcome unknown: the dispatcher stopped while the command was being sent'
            WHERE command_id IN (
                SELECT command_id FROM commands.commands WHERE status = $2 AND lease_until < now() FOR UPDATE SKIP LOCKED
            )
            RETURNING {_COLUMNS}
            """,
            CommandStatus.FAILED, CommandStatus.SENT,
        )
        if rows:
            await conn.execute(
                "UPDATE commands.attempts SET finished_at = now(), result = 'unknown', error = 'dispatcher stopped mid-send' "
                "WHERE command_id = ANY($1::uuid[]) AND finished_at IS NULL",
                [r["command_id"] for r in rows],
            )
        return rows


async def fail_expired(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Queued commands whose time to live ran out while no dispatcher held them."""
    return await conn.fetch(
        f"""
        UPDATE commands.commands SET status = $1, lease_until = NULL, lease_owner = NULL, updated_at = now(),
            error = 'time to live ran out before the command could be delivered'
                    || CASE WHEN error IS NULL THEN '' ELSE ' (last error: ' || error || ')' END
        WHERE command_id IN (
            SELECT command_id FROM commands.commands
            WHERE status = $2 AND expires_at < now() AND {_FREE} FOR UPDATE SKIP LOCKED
        )
        RETURNING {_COLUMNS}
        """,
        CommandStatus.FAILED, CommandStatus.QUEUED,
    )


async def count_waiting(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT count(*) FROM commands.commands WHERE status = ANY($1::text[])", OPEN_STATUSES)


async def record_ack(conn: asyncpg.Connection, *, charge_point_id: str, unique_id: str, command_type: str,
                     acked_at: datetime, event_id: str) -> bool:
    """Keep the charger's ack and link it to its command when the gateway's answer is already
    recorded; returns whether it was linked now."""
    await conn.execute(
        "INSERT INTO commands.acks (charge_point_id, unique_id, command_type, acked_at, event_id) "
        "VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (charge_point_id, unique_id) DO UPDATE SET acked_at = LEAST(acks.acked_at, EXCLUDED.acked_at)",
        charge_point_id, unique_id, command_type, acked_at, event_id,
    )
    done = await conn.execute(
        "UPDATE commands.commands SET acked_at = $3, updated_at = now() "
        "WHERE charge_point_id = $1 AND gateway_command_id = $2 AND (acked_at IS NULL OR acked_at > $3)",
        charge_point_id, unique_id, acked_at,
    )
    return done != "UPDATE 0"
