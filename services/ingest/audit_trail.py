"""The audit trail, kept by ingest: every operator's accepted write as the services report it
(`audit.recorded`), and the operators' read of it (`GET /v1/audit`)."""
from __future__ import annotations

from uuid import UUID

import asyncpg
from aiohttp import web

from services.ingest import store
from services.ingest.models import AuditQuery
from services.ingest.responses import AuditEntry
from shared.app import POOL
from shared.consumer import Message
from shared.domain import AuditRecorded
from shared.http import json_response, parse_query
from shared.pagination import decode_cursor, page


async def record_audit(conn: asyncpg.Connection, messages: list[Message]) -> None:
    await store.record_audit(conn, [AuditRecorded.model_validate(m.body) for m in messages])


async def list_audit(request: web.Request) -> web.Response:
    """Newest first, filtered by entity, entity id, actor and time."""
    query = parse_query(request, AuditQuery)
    before = decode_cursor(query.cursor, id_type=UUID) if query.cursor else None
    async with request.app[POOL].acquire() as conn:
        rows = await store.audit_page(conn, entity=query.entity, entity_id=query.entityId, actor=query.actor,
                                      at_from=query.at_from, at_to=query.at_to, before=before, limit=query.limit)
    return json_response(page(rows, query.limit, AuditEntry.from_row, lambda r: (r["at"], r["entry_id"])))
