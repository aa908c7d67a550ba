"""SQL of the CDRs (CDRs module, SENDER): which sessions are due one, and every CDR made, never
changed but for the note that a credit CDR credited it."""
from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg


async def due(conn: asyncpg.Connection, *, calm_since: datetime, limit: int) -> list[asyncpg.Record]:
    """Finalized, priced sessions of partners whose figures have not changed since `calm_since` and
    are not those of their current CDR (none yet, or re-priced), locked; another process skips them."""
    return await conn.fetch(
        """
        SELECT * FROM ocpi.roaming_sessions
        WHERE priced_revision > 0 AND revision > 0 AND figures_digest IS DISTINCT FROM cdr_digest
          AND figures_changed_at <= $1 AND partner_id IS NOT NULL AND session IS NOT NULL
        ORDER BY figures_changed_at LIMIT $2 FOR UPDATE SKIP LOCKED
        """,
        calm_since, limit,
    )


async def current(conn: asyncpg.Connection, session_id: UUID) -> asyncpg.Record | None:
    """The session's CDR that stands: neither a credit nor credited."""
    return await conn.fetchrow(
        "SELECT * FROM ocpi.cdrs WHERE session_id = $1 AND NOT credit AND credited_by IS NULL ORDER BY seq DESC LIMIT 1", session_id)


async def count_of(conn: asyncpg.Connection, session_id: UUID) -> int:
    return await conn.fetchval("SELECT count(*) FROM ocpi.cdrs WHERE session_id = $1 AND NOT credit", session_id)


async def add(conn: asyncpg.Connection, cdr: dict, *, session_id: UUID, partner_id: UUID, last_updated: datetime) -> None:
    await conn.execute(
        "INSERT INTO ocpi.cdrs (cdr_id, session_id, partner_id, credit, credit_reference_id, body, last_updated) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
        cdr["id"], session_id, partner_id, bool(cdr.get("credit")), cdr.get("credit_reference_id"), cdr, last_updated,
    )


async def credited(conn: asyncpg.Connection, cdr_id: str, credit_id: str) -> None:
    await conn.execute("UPDATE ocpi.cdrs SET credited_by = $2 WHERE cdr_id = $1", cdr_id, credit_id)


async def issued(conn: asyncpg.Connection, session_id: UUID, digest: str) -> None:
    """The session's current CDR states the figures of `digest`."""
    await conn.execute("UPDATE ocpi.roaming_sessions SET cdr_digest = $2 WHERE session_id = $1", session_id, digest)


async def page(conn: asyncpg.Connection, partner_id: UUID, *, date_from: datetime | None, date_to: datetime | None,
               offset: int, limit: int) -> tuple[list[asyncpg.Record], int]:
    """A partner's CDRs made in [date_from, date_to), in the order they were made, and how many there are."""
    where = "partner_id = $1 AND ($2::timestamptz IS NULL OR last_updated >= $2) AND ($3::timestamptz IS NULL OR last_updated < $3)"
    total = await conn.fetchval(f"SELECT count(*) FROM ocpi.cdrs WHERE {where}", partner_id, date_from, date_to)
    rows = await conn.fetch(f"SELECT body FROM ocpi.cdrs WHERE {where} ORDER BY seq OFFSET $4 LIMIT $5",
                            partner_id, date_from, date_to, offset, limit)
    return rows, total
