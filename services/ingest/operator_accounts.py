"""Operators, owned by ingest: named operator tokens with a role, created, listed and revoked;
each change announced as `operator.changed` and answered once every other service's copy holds
it, so a revoked token is refused at once everywhere."""
from __future__ import annotations

import asyncpg
from aiohttp import web

from services.ingest import store
from services.ingest.models import CreateOperator
from services.ingest.responses import CreatedOperator, Operator
from shared import operators
from shared.app import POOL, copies_applied
from shared.errors import Conflict
from shared.http import found, json_response, parse_body
from shared.outbox import enqueue_domain
from shared.topology import OPERATOR_COPIES

SCHEMA = store.SCHEMA


class OperatorExists(Conflict):
    title = "Operator exists"


async def create(conn: asyncpg.Connection, name: str, role: str) -> tuple[asyncpg.Record, str, str]:
    """A new operator (or a revoked name given again): its row, its token (never stored) and the
    announcement's id."""
    token = operators.new_token()
    async with conn.transaction():
        row = await conn.fetchrow(
            """
            INSERT INTO ingest.operators AS o (name, role, token_hash, created_at, changed_at)
            VALUES ($1, $2, $3, clock_timestamp(), clock_timestamp())
            ON CONFLICT (name) DO UPDATE SET role = EXCLUDED.role, token_hash = EXCLUDED.token_hash,
                created_at = EXCLUDED.created_at, changed_at = EXCLUDED.changed_at, revoked_at = NULL
            WHERE o.revoked_at IS NOT NULL
            RETURNING *
            """,
            name, role, operators.token_hash(token),
        )
        if row is None:
            raise OperatorExists(f"an operator {name!r} exists; revoke it first to give the name a new token")
        announced = await enqueue_domain(conn, SCHEMA, operators.changed(row, revoked=False, at=row["changed_at"]))
    return row, token, announced


async def create_operator(request: web.Request) -> web.Response:
    body = await parse_body(request, CreateOperator)
    async with request.app[POOL].acquire() as conn:
        row, token, announced = await create(conn, body.name, body.role)
    await copies_applied(request.app, SCHEMA, [announced], keeper=OPERATOR_COPIES)
    return json_response(CreatedOperator.from_row(row, token=token), status=201)


async def list_operators(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        rows = await conn.fetch("SELECT * FROM ingest.operators WHERE revoked_at IS NULL ORDER BY name")
    return json_response({"items": [Operator.from_row(r) for r in rows], "nextCursor": None})


async def operator_before(request: web.Request) -> dict | None:
    async with request.app[POOL].acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM ingest.operators WHERE name = $1 AND revoked_at IS NULL",
                                  request.match_info["name"])
    return Operator.from_row(row) if row else None


async def revoke_operator(request: web.Request) -> web.Response:
    """204 once every service refuses the operator's token."""
    name = request.match_info["name"]
    async with request.app[POOL].acquire() as conn, conn.transaction():
        row = found(await conn.fetchrow(
            "UPDATE ingest.operators SET revoked_at = clock_timestamp(), changed_at = clock_timestamp() "
            "WHERE name = $1 AND revoked_at IS NULL RETURNING *", name), "operator", f"no operator {name!r}")
        announced = await enqueue_domain(conn, SCHEMA, operators.changed(row, revoked=True, at=row["changed_at"]))
    await copies_applied(request.app, SCHEMA, [announced], keeper=OPERATOR_COPIES)
    return web.Response(status=204)
