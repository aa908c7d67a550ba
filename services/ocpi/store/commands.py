"""SQL of the commands partners sent (Commands module, RECEIVER) and their reservations."""
from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg


async def create(conn: asyncpg.Connection, command_id: UUID, partner_id: UUID, command: str, response_url: str,
                 charge_point_id: str, timeout_seconds: float, *, token_uid: str | None = None, connector_id: int | None = None,
                 authorization_reference: str | None = None, reservation_id: str | None = None,
                 reserved_until: datetime | None = None) -> None:
    """A command sent on; a START_SESSION or RESERVE_NOW keeps its token's uid, its connector and
    its authorization_reference, a RESERVE_NOW its reservation_id and expiry_date, a
    CANCEL_RESERVATION its reservation_id."""
    await conn.execute(
        "INSERT INTO ocpi.commands (command_id, partner_id, command, response_url, charge_point_id, timeout_at, token_uid, "
        "connector_id, authorization_reference, reservation_id, reserved_until) "
        "VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6), lower($7), $8, $9, $10, $11)",
        command_id, partner_id, command, response_url, charge_point_id, timeout_seconds, token_uid, connector_id,
        authorization_reference, reservation_id, reserved_until,
    )


async def claim_start(conn: asyncpg.Connection, session_id: UUID, *, partner_id: UUID, token_uid: str, charge_point_id: str,
                      connector_id: int | None, started_at: datetime | None, heard_at: datetime) -> asyncpg.Record | None:
    """The START_SESSION or RESERVE_NOW that started this session, claimed by it (a command starts
    one session), or None: the oldest unclaimed one of the same partner for the same token uid at
    the session's charger (and connector, when the command named one) within whose window the
    session started by the charger's clock or was first heard of by ours (chargers' clocks are
    routinely off). A START_SESSION's window is its lifetime (its creation to its timeout), and the
    charger must not have refused it (its answer may come after the transaction). A RESERVE_NOW's
    is the reservation's: from its creation to its expiry_date, cut short by the partner's next
    RESERVE_NOW (which replaces it) or CANCEL_RESERVATION of the same reservation_id once the
    charger accepted that, and the charger must have accepted the reservation. Both times are the
    session's first, so a command made after it started never matches."""
    return await conn.fetchrow(
        """
        UPDATE ocpi.commands SET session_id = $1
        WHERE command_id = (
            SELECT c.command_id FROM ocpi.commands c
            CROSS JOIN LATERAL (SELECT CASE c.command WHEN 'START_SESSION' THEN c.timeout_at ELSE LEAST(c.reserved_until, (
                SELECT min(later.created_at) FROM ocpi.commands later
                WHERE later.partner_id = c.partner_id AND later.reservation_id = c.reservation_id
                  AND later.created_at > c.created_at AND later.result = 'ACCEPTED'
                  AND later.command IN ('RESERVE_NOW', 'CANCEL_RESERVATION'))) END AS ends_at) w
            WHERE c.command IN ('START_SESSION', 'RESERVE_NOW') AND c.session_id IS NULL AND c.partner_id = $2
              AND c.token_uid = lower($3) AND c.charge_point_id = $4
              AND (c.connector_id IS NULL OR $5::integer IS NULL OR c.connector_id = $5)
              AND (c.result = 'ACCEPTED' OR (c.result IS NULL AND c.command = 'START_SESSION'))
              AND ($6::timestamptz BETWEEN c.created_at AND w.ends_at OR $7::timestamptz BETWEEN c.created_at AND w.ends_at)
            ORDER BY c.created_at LIMIT 1 FOR UPDATE OF c SKIP LOCKED)
        RETURNING command_id, authorization_reference
        """,
        session_id, partner_id, token_uid, charge_point_id, connector_id, started_at, heard_at,
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
