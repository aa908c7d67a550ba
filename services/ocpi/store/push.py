"""SQL of the push outbox: what waits to be sent to each partner, in order, and each partner's
retry state. A relay holds a partner's `push_state` row while it sends, so two processes never
send one partner's pushes at once (nor out of order)."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg


async def enqueue(conn: asyncpg.Connection, partner_ids: Sequence[UUID], *, module: str, object_key: str, method: str,
                  path: str, body: Any) -> None:
    if not partner_ids:
        return
    await conn.execute(
        "INSERT INTO ocpi.push_outbox (partner_id, module, object_key, method, path, body) "
        "SELECT p, $2, $3, $4, $5, $6 FROM unnest($1::uuid[]) AS p",
        list(partner_ids), module, object_key, method, path, body,
    )


async def due_partners(conn: asyncpg.Connection, now: datetime) -> list[UUID]:
    """Partners with pushes waiting whose retry time (if any) has come."""
    rows = await conn.fetch(
        """
        SELECT DISTINCT o.partner_id FROM ocpi.push_outbox o LEFT JOIN ocpi.push_state s USING (partner_id)
        WHERE s.retry_at IS NULL OR s.retry_at <= $1
        """, now,
    )
    return [r["partner_id"] for r in rows]


async def hold(conn: asyncpg.Connection, partner_id: UUID) -> asyncpg.Record | None:
    """Take the partner's send turn inside the caller's transaction; None when another relay has it."""
    await conn.execute("INSERT INTO ocpi.push_state (partner_id) VALUES ($1) ON CONFLICT DO NOTHING", partner_id)
    return await conn.fetchrow(
        "SELECT s.*, p.their_token, p.endpoints, p.roles, p.status FROM ocpi.push_state s JOIN ocpi.partners p USING (partner_id) "
        "WHERE s.partner_id = $1 FOR UPDATE OF s SKIP LOCKED", partner_id,
    )


async def waiting(conn: asyncpg.Connection, partner_id: UUID, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM ocpi.push_outbox WHERE partner_id = $1 ORDER BY id LIMIT $2", partner_id, limit)


async def sent(conn: asyncpg.Connection, partner_id: UUID, push_id: int, *, refused: str | None) -> None:
    """A push answered for good: delivered, or refused by the partner (`refused`: why; dropped)."""
    await conn.execute("DELETE FROM ocpi.push_outbox WHERE id = $1", push_id)
    await conn.execute(
        "UPDATE ocpi.push_state SET failures = 0, retry_at = NULL, last_sent_at = now(), "
        "refused = refused + $2, last_error = coalesce($3, last_error) WHERE partner_id = $1",
        partner_id, 1 if refused else 0, refused,
    )


async def failed(conn: asyncpg.Connection, partner_id: UUID, *, error: str, retry_at: datetime) -> None:
    await conn.execute(
        "UPDATE ocpi.push_state SET failures = failures + 1, retry_at = $2, last_error = $3 WHERE partner_id = $1",
        partner_id, retry_at, error,
    )


async def backlog(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT count(*) FROM ocpi.push_outbox")
