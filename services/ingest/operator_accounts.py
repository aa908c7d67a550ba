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
from shared.tokens import token_hash
from shared.topology import OPERATOR_COPIES

SCHEMA = store.SCHEMA


class OperatorExists(Conflict):
    title = "Operator exists"


async def create(conn: asyncpg.Connection, name: str, role: str) -> tuple[asyncpg.Record, str, str]:
    """A new operator (or a revoked name given again): its row, its token (never stored) and the
    announcement's id."""
    token = operators.new_token()
    async with conn.transaction():
        row = await store.create_operator(conn, name, role, token_hash(token))
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
        rows = await store.operators(conn)
    return json_response({"items": [Operator.from_row(r) for r in rows], "nextCursor": None})


async def revoke_operator(request: web.Request) -> web.Response:
    """204 once every service refuses the operator's token."""
    name = request.match_info["name"]
    async with request.app[POOL].acquire() as conn, conn.transaction():
        row = found(await store.revoke_operator(conn, name), "operator", f"no operator {name!r}")
        announced = await enqueue_domain(conn, SCHEMA, operators.changed(row, revoked=True, at=row["changed_at"]))
    await copies_applied(request.app, SCHEMA, [announced], keeper=OPERATOR_COPIES)
    return web.Response(status=204)
