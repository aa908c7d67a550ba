"""SQL of the partners: who they are, their token to us (as its SHA-256), their token and
endpoints for our calls to them, and where their registration stands."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg

from shared.tokens import token_hash


async def create(conn: asyncpg.Connection, partner_id: UUID, name: str, token_a: str) -> asyncpg.Record | None:
    """A partner waiting to register with `token_a`; None when the name is taken."""
    return await conn.fetchrow(
        "INSERT INTO ocpi.partners (partner_id, name, status, token_hash, token_kind, created_at, updated_at) "
        "VALUES ($1, $2, 'PENDING', $3, 'A', now(), now()) ON CONFLICT (name) DO NOTHING RETURNING *",
        partner_id, name, token_hash(token_a),
    )


async def by_token(conn: asyncpg.Connection, candidates: Sequence[str]) -> tuple[asyncpg.Record, str] | None:
    """The partner holding one of these tokens, and which; looked up by hash, so the timing tells
    nothing about the token."""
    hashes = [token_hash(t) for t in candidates]
    row = await conn.fetchrow("SELECT * FROM ocpi.partners WHERE token_hash = ANY($1::text[])", hashes)
    if row is None:
        return None
    return row, candidates[hashes.index(row["token_hash"])]


async def get(conn: asyncpg.Connection, partner_id: UUID, *, lock: bool = False) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT * FROM ocpi.partners WHERE partner_id = $1{' FOR UPDATE' if lock else ''}", partner_id)


_WITH_PUSHES = """
    SELECT p.*, (SELECT count(*) FROM ocpi.push_outbox o WHERE o.partner_id = p.partner_id) AS push_backlog,
           s.last_error AS last_push_error, s.retry_at AS push_retry_at, s.last_sent_at AS last_push_at,
           coalesce(s.refused, 0) AS pushes_refused
    FROM ocpi.partners p LEFT JOIN ocpi.push_state s USING (partner_id)
"""


async def page(conn: asyncpg.Connection, *, after: str | None, limit: int) -> list[asyncpg.Record]:
    """Partners by name, with their push backlog and where their pushes stand."""
    return await conn.fetch(f"{_WITH_PUSHES} WHERE $1::text IS NULL OR p.name > $1 ORDER BY p.name LIMIT $2", after, limit + 1)


async def with_pushes(conn: asyncpg.Connection, partner_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(f"{_WITH_PUSHES} WHERE p.partner_id = $1", partner_id)


async def register(conn: asyncpg.Connection, partner_id: UUID, *, new_token: str, their_token: str, versions_url: str,
                   version: str, endpoints: list[dict[str, Any]], roles: list[dict[str, Any]]) -> asyncpg.Record:
    """The partner registered (or registered again): `new_token` is the only token of it we take
    from now on (token C), `their_token` the one we call it with."""
    return await conn.fetchrow(
        """
        UPDATE ocpi.partners SET status = 'REGISTERED', token_hash = $2, token_kind = 'C', their_token = $3,
            versions_url = $4, version = $5, endpoints = $6, roles = $7, registered_at = now(), updated_at = now()
        WHERE partner_id = $1 RETURNING *
        """,
        partner_id, token_hash(new_token), their_token, versions_url, version, endpoints, roles,
    )


async def set_token(conn: asyncpg.Connection, partner_id: UUID, token: str | None, *, kind: str) -> None:
    """Replace the token the partner calls us with (None: none works)."""
    await conn.execute(
        "UPDATE ocpi.partners SET token_hash = $2, token_kind = $3, updated_at = now() WHERE partner_id = $1",
        partner_id, token_hash(token) if token is not None else None, kind,
    )


async def restore_token_hash(conn: asyncpg.Connection, partner_id: UUID, hashed: str | None, kind: str | None) -> None:
    await conn.execute("UPDATE ocpi.partners SET token_hash = $2, token_kind = $3, updated_at = now() WHERE partner_id = $1",
                       partner_id, hashed, kind)


async def unregister(conn: asyncpg.Connection, partner_id: UUID) -> None:
    """No token of the partner works any more, we call it no more, and nothing waits for it."""
    await conn.execute(
        "UPDATE ocpi.partners SET status = 'UNREGISTERED', token_hash = NULL, token_kind = NULL, their_token = NULL, "
        "endpoints = '[]', updated_at = now() WHERE partner_id = $1", partner_id,
    )
    await conn.execute("DELETE FROM ocpi.push_outbox WHERE partner_id = $1", partner_id)


async def receivers_of(conn: asyncpg.Connection, module: str) -> list[UUID]:
    """The registered partners with a RECEIVER endpoint of `module`."""
    rows = await conn.fetch(
        "SELECT partner_id FROM ocpi.partners WHERE status = 'REGISTERED' AND endpoints @> $1::jsonb ORDER BY partner_id",
        [{"identifier": module, "role": "RECEIVER"}],
    )
    return [r["partner_id"] for r in rows]
