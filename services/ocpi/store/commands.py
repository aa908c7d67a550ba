"""SQL of the commands partners sent (Commands module, RECEIVER) and their reservations."""
from __future__ import annotations

from uuid import UUID

import asyncpg


async def create(conn: asyncpg.Connection, command_id: UUID, partner_id: UUID, command: str, response_url: str,
                 charge_point_id: str, timeout_seconds: float) -> None:
    await conn.execute(
        "INSERT INTO ocpi.commands (command_id, partner_id, command, response_url, charge_point_id, timeout_at) "
        "VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))",
        command_id, partner_id, command, response_url, charge_point_id, timeout_seconds,
    )


async def finish(conn: asyncpg.Connection, command_id: UUID, result: str) -> asyncpg.Record | None:
    """Record the result (once); the command, or None when it had one already."""
    return await conn.fetchrow(
        "UPDATE ocpi.commands SET result = $2, finished_at = now() WHERE command_id = $1 AND result IS NULL RETURNING *",
        command_id, result,
    )


async def timed_out(conn: asyncpg.Connection, limit: int = 100) -> list[asyncpg.Record]:
    """Commands with no outcome past their timeout: TIMEOUT now (a later outcome is not sent)."""
    return await conn.fetch(
        """
        UPDATE ocpi.commands SET result = 'TIMEOUT', finished_at = now()
        WHERE command_id IN (SELECT command_id FROM ocpi.commands WHERE result IS NULL AND timeout_at < now()
                             ORDER BY timeout_at LIMIT $1 FOR UPDATE SKIP LOCKED)
        RETURNING *
        """,
        limit,
    )


async def reservation(conn: asyncpg.Connection, partner_id: UUID, reservation_id: str, charge_point_id: str | None) -> asyncpg.Record | None:
    """The reservation's OCPP id: made for a new one when `charge_point_id` is given (RESERVE_NOW),
    else only found (CANCEL_RESERVATION)."""
    if charge_point_id is not None:
        return await conn.fetchrow(
            """
            INSERT INTO ocpi.reservations (partner_id, reservation_id, charge_point_id) VALUES ($1, $2, $3)
            ON CONFLICT (partner_id, reservation_id) DO UPDATE SET charge_point_id = EXCLUDED.charge_point_id
            RETURNING *
            """,
            partner_id, reservation_id, charge_point_id,
        )
    return await conn.fetchrow("SELECT * FROM ocpi.reservations WHERE partner_id = $1 AND reservation_id = $2",
                               partner_id, reservation_id)


async def going_session(conn: asyncpg.Connection, session_id: UUID, partner_id: UUID) -> asyncpg.Record | None:
    """A going session of the partner's tokens (the Sessions module's copy), with its charger and
    OCPP transaction id; None when there is no such session or it ended."""
    return await conn.fetchrow(
        "SELECT charge_point_id, transaction_id FROM ocpi.roaming_sessions "
        "WHERE session_id = $1 AND partner_id = $2 AND revision = 0 AND transaction_id IS NOT NULL",
        session_id, partner_id,
    )
