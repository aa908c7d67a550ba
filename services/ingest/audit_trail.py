"""The audit trail, kept by ingest: every operator's accepted write as the services report it
(`audit.recorded`), and the operators' read of it (`GET /v1/audit`)."""
from __future__ import annotations

from uuid import UUID

import asyncpg
from aiohttp import web

from services.ingest.models import AuditQuery
from services.ingest.responses import AuditEntry
from shared.app import POOL
from shared.consumer import Message
from shared.db import Filters
from shared.domain import AuditRecorded
from shared.http import json_response, parse_query
from shared.pagination import decode_cursor, page


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
