"""Operators and their roles (CONTRACT section 10). Ingest decides who the operators are; every
other service keeps a copy from `operator.changed` in its own schema's `operators` table, so each
process checks a token without asking anyone. A token is stored as `shared.tokens` says."""
from __future__ import annotations

import secrets
from datetime import datetime

import asyncpg

from shared.consumer import Message
from shared.domain import CopyApplied, OperatorChanged
from shared.openapi import ROLES
from shared.outbox import enqueue_domain
from shared.tokens import token_hash
from shared.service import Consumes
from shared.topology import Queue

TOKEN_PREFIX = "cpms_"
BOOTSTRAP_ADMIN = "admin"  # the actor name of CPMS_ADMIN_TOKEN


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def allows(role: str, needed: str) -> bool:
    """viewer < operator < finance < admin: a role may do what every smaller role may."""
    return ROLES.index(role) >= ROLES.index(needed)


async def operator_of(conn: asyncpg.Connection, schema: str, token: str) -> tuple[str, str] | None:
    """(name, role) of the operator holding `token`, None for no such (or a revoked) operator."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = await conn.fetchrow(f'SELECT name, role FROM "{schema}".operators WHERE token_hash = $1 AND revoked_at IS NULL',
                              token_hash(token))
    return (row["name"], row["role"]) if row else None


async def record(conn: asyncpg.Connection, schema: str, change: OperatorChanged) -> bool:
    """Apply an operator's change to `schema`'s table; the newest change of a name wins."""
    done = await conn.execute(
        f"""
        INSERT INTO "{schema}".operators AS o (name, role, token_hash, created_at, changed_at, revoked_at)
        VALUES ($1, $2, $3, $4, $5::timestamptz, CASE WHEN $6::boolean THEN $5::timestamptz END)
        ON CONFLICT (name) DO UPDATE SET role = EXCLUDED.role, token_hash = EXCLUDED.token_hash,
            created_at = EXCLUDED.created_at, changed_at = EXCLUDED.changed_at, revoked_at = EXCLUDED.revoked_at
        WHERE EXCLUDED.changed_at > o.changed_at
        """,
        change.name, change.role, change.tokenHash, change.createdAt, change.at, change.revoked,
    )
    return done != "INSERT 0 0"


def copy_of_operators(schema: str, queue: Queue) -> Consumes:
    """The consumer that keeps `schema`'s copy of the operators, and says so (read your writes)."""

    async def apply(conn: asyncpg.Connection, messages: list[Message]) -> None:
        for message in messages:
            await record(conn, schema, OperatorChanged.model_validate(message.body))
        await enqueue_domain(conn, schema, CopyApplied(messageIds=[m.message_id for m in messages], keeper=queue.key))

    return Consumes(queue, apply, wakes_outbox=True)


def changed(row: asyncpg.Record, *, revoked: bool, at: datetime) -> OperatorChanged:
    return OperatorChanged(name=row["name"], role=row["role"], tokenHash=row["token_hash"], createdAt=row["created_at"],
                           revoked=revoked, at=at)
