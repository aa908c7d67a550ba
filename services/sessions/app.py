"""Sessions: live charger state, connectors and sessions built from the charger events, their
finalization (published as `session.finalized`) and the operator's reads. Every route is listed here."""
from __future__ import annotations

from uuid import UUID

from aiohttp import web

from services.sessions import consumers, store
from services.sessions.finalization import refinalize
from services.sessions.models import FinalizeQuery
from shared.app import POOL, add_consumer, add_outbox_relay, outbox_relay
from shared.http import Problem, json_response, parse_query
from shared.pagination import PageQuery, decode_cursor, page
from shared.topology import SESSIONS_BILLING, SESSIONS_CHARGER_EVENTS, SESSIONS_REGISTRY

SCHEMA = store.SCHEMA


async def get_charger(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        row = await store.charger(conn, request.match_info["chargePointId"])
    return json_response(store.render_charger(_charger_or_404(row, request)))


async def list_connectors(request: web.Request) -> web.Response:
    query = parse_query(request, PageQuery)
    charge_point_id = request.match_info["chargePointId"]
    after = _cursor_key(decode_cursor(query.cursor, time_key=False)[1], int) if query.cursor else None
    async with request.app[POOL].acquire() as conn:
        _charger_or_404(await store.charger(conn, charge_point_id), request)
        rows = await store.connectors(conn, charge_point_id, after=after, limit=query.limit)
    return json_response(page(rows, query.limit, store.render_connector, lambda r: ("connector", r["connector_id"])))


async def list_charger_sessions(request: web.Request) -> web.Response:
    query = parse_query(request, PageQuery)
    charge_point_id = request.match_info["chargePointId"]
    before = None
    if query.cursor:
        at, raw_id = decode_cursor(query.cursor)
        before = (at, _cursor_key(raw_id, UUID))
    async with request.app[POOL].acquire() as conn:
        _charger_or_404(await store.charger(conn, charge_point_id), request)
        rows = await store.sessions_of_charger(conn, charge_point_id, before=before, limit=query.limit)
    return json_response(page(rows, query.limit, store.render_session, lambda r: (r["sort_at"], r["session_id"])))


async def get_session(request: web.Request) -> web.Response:
    session_id = _session_id(request)
    async with request.app[POOL].acquire() as conn:
        row = await store.session(conn, session_id)
    return json_response(store.render_session(_session_or_404(row, request)))


async def finalize_session(request: web.Request) -> web.Response:
    """An Active session (the charger went silent) is closed now, as it stands; a finalized one is
    returned unchanged, or recomputed with force. 409 once money has moved."""
    session_id = _session_id(request)
    force = parse_query(request, FinalizeQuery).force
    async with request.app[POOL].acquire() as conn, conn.transaction():
        row = _session_or_404(await store.session_for_update(conn, session_id), request)
        if force and row["settlement_status"] in store.LOCKED_SETTLEMENTS:
            raise Problem(409, "Settlement in progress",
                          f"the session's settlement is {row['settlement_status']}: money has moved, it cannot be re-finalized")
        changed = force or row["status"] != "Finalized"
        if row["status"] != "Finalized":
            await store.close_session(conn, session_id)
        if changed:
            await refinalize(conn, [session_id], forced=[session_id])
            row = await store.session(conn, session_id)
    if changed:
        outbox_relay(request.app, SCHEMA).wake()
    return json_response({"session": store.render_session(row), "force": force})


def _session_id(request: web.Request) -> UUID:
    try:
        return UUID(request.match_info["sessionId"])
    except ValueError:
        raise Problem(404, "Session not found", f"no session {request.match_info['sessionId']}") from None


def _cursor_key(raw: str, kind: type):
    try:
        return kind(raw)
    except ValueError:
        raise Problem(400, "Invalid cursor", "the cursor is not one this API issued",
                      errors=[{"loc": ["query", "cursor"], "msg": "invalid cursor"}]) from None


def _session_or_404(row, request: web.Request):
    if row is None:
        raise Problem(404, "Session not found", f"no session {request.match_info['sessionId']}")
    return row


def _charger_or_404(row, request: web.Request):
    if row is None:
        raise Problem(404, "Charger not found", f"no charger {request.match_info['chargePointId']} is known")
    return row


def setup(app: web.Application) -> None:
    app.router.add_get("/v1/chargers/{chargePointId}", get_charger)
    app.router.add_get("/v1/chargers/{chargePointId}/connectors", list_connectors)
    app.router.add_get("/v1/chargers/{chargePointId}/sessions", list_charger_sessions)
    app.router.add_get("/v1/sessions/{sessionId}", get_session)
    app.router.add_post("/v1/sessions/{sessionId}/finalize", finalize_session)
    add_outbox_relay(app, SCHEMA)
    add_consumer(app, SESSIONS_CHARGER_EVENTS, SCHEMA, batch_handler=consumers.apply_charger_events, wakes_outbox=True,
                 repeats=True)
    add_consumer(app, SESSIONS_REGISTRY, SCHEMA, consumers.apply_registry, wakes_outbox=True)
    add_consumer(app, SESSIONS_BILLING, SCHEMA, batch_handler=consumers.apply_billing, wakes_outbox=True)
