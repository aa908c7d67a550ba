"""Operators and the audit trail, owned by ingest: named operator tokens with a role (created,
listed, revoked; each change announced as `operator.changed` and answered once every other
service's copy holds it, so a revoked token is refused at once everywhere), and the trail of every
operator's accepted write, as the services report it (`audit.recorded`)."""
from __future__ import annotations

from uuid import UUID

import asyncpg
from aiohttp import web

from services.ingest import store
from services.ingest.models import AuditQuery, CreateOperator
from services.ingest.responses import AuditEntry, CreatedOperator, Operator
from shared import operators
from shared.app import POOL, copies_applied
from shared.consumer import Message
from shared.db import Filters
from shared.domain import AuditRecorded
from shared.errors import Conflict
from shared.http import found, json_response, parse_body, parse_query
from shared.openapi import Operation, page_of
from shared.outbox import enqueue_domain
from shared.pagination import decode_cursor, page
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


async def _operator_before(request: web.Request) -> dict | None:
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


# --- the audit trail -------------------------------------------------------------------------------

async def record_audit(conn: asyncpg.Connection, messages: list[Message]) -> None:
    entries = [AuditRecorded.model_validate(m.body) for m in messages]
    await conn.executemany(
        "INSERT INTO ingest.audit (entry_id, at, actor, role, method, path, entity, entity_id, before, after) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (entry_id) DO NOTHING",
        [(e.entryId, e.at, e.actor, e.role, e.method, e.path, e.entity, e.entityId, e.before, e.after) for e in entries],
    )


async def list_audit(request: web.Request) -> web.Response:
    """Newest first, filtered by entity, entity id, actor and time."""
    query = parse_query(request, AuditQuery)
    filters = Filters()
    for column, value in (("entity", query.entity), ("entity_id", query.entityId), ("actor", query.actor)):
        if value is not None:
            filters.add(f"{column} = {{}}", value)
    if query.at_from is not None:
        filters.add("at >= {}", query.at_from)
    if query.at_to is not None:
        filters.add("at < {}", query.at_to)
    if query.cursor:
        filters.add("(at, entry_id) < ({}, {}::uuid)", *decode_cursor(query.cursor, id_type=UUID))
    sql = f"SELECT * FROM ingest.audit WHERE {filters.where} ORDER BY at DESC, entry_id DESC LIMIT {filters.arg(query.limit + 1)}"
    async with request.app[POOL].acquire() as conn:
        rows = await conn.fetch(sql, *filters.args)
    return json_response(page(rows, query.limit, AuditEntry.from_row, lambda r: (r["at"], r["entry_id"])))


OPERATIONS = (
    Operation("POST", "/v1/operators", create_operator, "Create a named operator token (shown this once)", "admin",
              {201: CreatedOperator}, body=CreateOperator, errors=(409,), redact=("token",)),
    Operation("GET", "/v1/operators", list_operators, "The operators (never their tokens)", "admin", {200: page_of(Operator)}),
    Operation("DELETE", "/v1/operators/{name}", revoke_operator, "Revoke an operator's token, at once everywhere", "admin",
              {204: None}, before=_operator_before),
    Operation("GET", "/v1/audit", list_audit, "Every accepted operator write, newest first", "finance",
              {200: page_of(AuditEntry)}, query=AuditQuery),
)
