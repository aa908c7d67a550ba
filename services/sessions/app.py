"""Sessions: live charger state, connectors and sessions built from the charger events, their
finalization (published as `session.finalized`), the operator's reads, and who may charge. Every
route is listed here (the token list's handlers are in `token_list`)."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

from aiohttp import web

from services.sessions import known_sites, store, token_list
from services.sessions.finalization import close_stale_sessions, finalize_on_request
from services.sessions.models import AuthorizeRequest, ChargerQuery, ConnectorSpecs, FinalizeQuery, NewToken, ReplacedToken, SessionQuery, TokenQuery
from services.sessions.responses import (
    Authorized,
    Charger,
    ChargerLoad,
    Connector,
    Finalized,
    FleetCharger,
    ProfileSent,
    Session,
    SessionShare,
    SiteLoad,
    Token,
)
from shared.app import POOL, SETTINGS, entity_before, unit_of_work
from shared.csv_export import CSV_BODY, stream_csv, wants_csv
from shared.domain import ConnectorSpecsChanged
from shared.errors import DomainError
from shared.http import Problem, found, json_response, parse_body, parse_query, path_uuid
from shared.openapi import Fragment, Operation, page_of
from shared.outbox import enqueue_domain
from shared.pagination import PageQuery, after_key, decode_cursor, page

SCHEMA = store.SCHEMA
log = logging.getLogger(__name__)


async def get_charger(request: web.Request) -> web.Response:
    charge_point_id = request.match_info["chargePointId"]
    async with request.app[POOL].acquire() as conn:
        row = await _charger(conn, charge_point_id)
    return json_response(Charger.from_row(row))


async def list_chargers(request: web.Request) -> web.Response:
    """The fleet, by chargePointId: each charger with its connectors' statuses and whether it is online."""
    query = parse_query(request, ChargerQuery)
    after = after_key(query.cursor, "charger")
    online_since = datetime.now(UTC) - timedelta(seconds=request.app[SETTINGS].charger_offline_after_seconds)
    async with request.app[POOL].acquire() as conn:
        if query.siteId is not None:
            await known_sites.require_known(conn, [query.siteId], loc=("query", "siteId"))
        rows = await store.chargers.chargers_page(conn, site_id=query.siteId, online_since=online_since, online=query.online,
                                                  registered=query.registered, search=query.q, after=after, limit=query.limit)
        connectors = await store.chargers.connectors_of(conn, [r["charge_point_id"] for r in rows[:query.limit]])

    def item(row) -> dict:
        return FleetCharger.from_row(row, online=store.chargers.is_online(row, online_since),
                                     connectors=[Connector.from_row(c) for c in connectors.get(row["charge_point_id"], [])])

    return json_response(page(rows, query.limit, item, lambda r: ("charger", r["charge_point_id"])))


async def list_connectors(request: web.Request) -> web.Response:
    query = parse_query(request, PageQuery)
    charge_point_id = request.match_info["chargePointId"]
    after = decode_cursor(query.cursor, time_key=False, id_type=int)[1] if query.cursor else None
    async with request.app[POOL].acquire() as conn:
        await _charger(conn, charge_point_id)
        rows = await store.chargers.connectors(conn, charge_point_id, after=after, limit=query.limit)
    return json_response(page(rows, query.limit, Connector.from_row, lambda r: ("connector", r["connector_id"])))


async def replace_connector_specs(request: web.Request) -> web.Response:
    charge_point_id = request.match_info["chargePointId"]
    connector_id = _connector_id(request)
    specs = await parse_body(request, ConnectorSpecs)
    async with unit_of_work(request.app, store.SCHEMA) as conn:
        await _charger(conn, charge_point_id)
        at = await store.chargers.replace_connector_specs(conn, charge_point_id, connector_id, specs.columns())
        await store.load.make_due(conn, charge_point_ids=[charge_point_id])  # its cap may have changed
        row = await store.chargers.connector(conn, charge_point_id, connector_id)
        await enqueue_domain(conn, store.SCHEMA, ConnectorSpecsChanged(chargePointId=charge_point_id, connectorId=connector_id,
                                                                       **specs.model_dump(), at=at))
    return json_response(Connector.from_row(row))


def _connector_id(request: web.Request) -> int:
    text = request.match_info["connectorId"]
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 1000:
        raise DomainError("connectorId must be a whole number from 1 to 1000 (0 is the charger itself)",
                          errors=[{"loc": ["path", "connectorId"], "msg": f"not a connector id: {text[:20]!r}"}])
    return int(text)


async def _connector_before(request: web.Request) -> dict | None:
    try:
        connector_id = _connector_id(request)
    except DomainError:
        return None
    async with request.app[POOL].acquire() as conn:
        row = await store.chargers.connector(conn, request.match_info["chargePointId"], connector_id)
    return Connector.from_row(row) if row else None


async def list_charger_sessions(request: web.Request) -> web.Response:
    query = parse_query(request, PageQuery)
    charge_point_id = request.match_info["chargePointId"]
    before = decode_cursor(query.cursor, id_type=UUID) if query.cursor else None
    async with request.app[POOL].acquire() as conn:
        await _charger(conn, charge_point_id)
        rows = await store.sessions.sessions_page(conn, charge_point_id=charge_point_id, before=before, limit=query.limit)
    return json_response(page(rows, query.limit, Session.from_row, lambda r: (r["sort_at"], r["session_id"])))


async def list_sessions(request: web.Request) -> web.StreamResponse:
    """Every session of the network, newest first, filtered; all of them as CSV with `Accept: text/csv`."""
    query = parse_query(request, SessionQuery)
    filters = {"charge_point_id": query.chargePointId, "site_id": query.siteId, "status": query.status,
               "id_tag": query.idTag, "started_from": query.started_from, "started_to": query.started_to}
    async with request.app[POOL].acquire() as conn:
        if query.siteId is not None:
            await known_sites.require_known(conn, [query.siteId], loc=("query", "siteId"))
        if wants_csv(request):
            async with conn.transaction():
                return await stream_csv(request, store.sessions.every_session(conn, **filters), columns=list(Session.model_fields),
                                        render=Session.from_row, filename="sessions.csv")
        before = decode_cursor(query.cursor, id_type=UUID) if query.cursor else None
        rows = await store.sessions.sessions_page(conn, **filters, before=before, limit=query.limit)
    return json_response(page(rows, query.limit, Session.from_row, lambda r: (r["sort_at"], r["session_id"])))


async def get_session(request: web.Request) -> web.Response:
    session_id = path_uuid(request, "sessionId", "session")
    async with request.app[POOL].acquire() as conn:
        row = found(await store.sessions.session(conn, session_id), "session", f"no session {session_id}")
    return json_response(Session.from_row(row))


async def finalize_session(request: web.Request) -> web.Response:
    """An Active session (the charger went silent) is closed now, as it stands; a finalized one is
    returned unchanged, or recomputed with force. 409 once money has moved."""
    session_id = path_uuid(request, "sessionId", "session")
    force = parse_query(request, FinalizeQuery).force
    async with unit_of_work(request.app, SCHEMA) as conn:
        row = found(await store.sessions.session_for_update(conn, session_id), "session", f"no session {session_id}")
        if await finalize_on_request(conn, row, force=force):
            row = await store.sessions.session(conn, session_id)
    return json_response({"session": Session.from_row(row), "force": force})


async def stale_sweeper(app: web.Application) -> AsyncIterator[None]:
    """Sessions their charger went silent on close themselves after CPMS_SESSION_STALE_AFTER_SECONDS."""
    stale_after = app[SETTINGS].session_stale_after_seconds
    interval = min(60.0, stale_after / 2)

    async def sweep() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                async with unit_of_work(app, SCHEMA) as conn:
                    await close_stale_sessions(conn, stale_after_seconds=stale_after)
            except Exception as exc:  # the database away: the next sweep tries again
                log.warning("stale session sweep failed", extra={"error": repr(exc)})

    task = asyncio.create_task(sweep(), name="sessions:stale-sweeper")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def get_site_load(request: web.Request) -> web.Response:
    """The site's limit, its Active sessions' shares and measured power, and the profiles sent."""
    site_id = path_uuid(request, "siteId", "site")
    async with request.app[POOL].acquire() as conn:
        if await store.chargers.unknown_sites(conn, [site_id]):
            raise Problem(404, "Not found", f"no site {site_id}")
        limit = await store.load.site_limit(conn, site_id)
        shares = await store.load.shares_of(conn, site_id)
        chargers = await store.load.site_chargers(conn, site_id)
        profiles = await store.load.recent_profiles(conn, site_id, limit=100)
    watts = limit["max_power_w"] if limit else None
    return json_response(SiteLoad.body(
        siteId=site_id, maxPowerKw=format((Decimal(watts) / 1000).normalize(), "f") if watts else None,
        measuredW=int(sum(s["measured_w"] or 0 for s in shares)), overLimit=bool(limit and limit["over_limit"] and watts),
        idleReserveW=limit["idle_w"] if watts else None, computedAt=limit["computed_at"] if limit else None,
        sessions=[SessionShare.from_row(s, measuredW=int(s["measured_w"]) if s["measured_w"] is not None else None) for s in shares],
        chargers=[ChargerLoad.from_row(c, flagged=c["flagged_at"] is not None) for c in chargers],
        profiles=[ProfileSent.from_row(p) for p in profiles]))


_session_before = entity_before("sessionId", store.sessions.session, Session, key=UUID)
_token_before = entity_before("idTag", store.tokens.token, Token)


async def _charger(conn, charge_point_id: str):
    return found(await store.chargers.charger(conn, charge_point_id), "charger", f"no charger {charge_point_id} is known")


# Every route of the service: its handler, request and response models, auth and errors.
API = Fragment("sessions", (
    Operation("GET", "/v1/chargers", list_chargers, "The fleet: chargers with their connectors and whether they are online",
              "viewer", {200: page_of(FleetCharger)}, query=ChargerQuery),
    Operation("GET", "/v1/chargers/{chargePointId}", get_charger, "A charger as its events describe it", "viewer", {200: Charger}),
    Operation("GET", "/v1/chargers/{chargePointId}/connectors", list_connectors, "A charger's connectors", "viewer",
              {200: page_of(Connector)}, query=PageQuery),
    Operation("PUT", "/v1/chargers/{chargePointId}/connectors/{connectorId}", replace_connector_specs,
              "Describe a connector (OCPI standard, format, power type, maxima in V, A and W): roaming and site power limits read it",
              "operator", {200: Connector}, body=ConnectorSpecs, before=_connector_before),
    Operation("GET", "/v1/chargers/{chargePointId}/sessions", list_charger_sessions, "A charger's sessions, newest first", "viewer",
              {200: page_of(Session)}, query=PageQuery),
    Operation("GET", "/v1/sessions", list_sessions, "Every session of the network, newest first (Accept: text/csv: all of them)",
              "viewer", {200: (page_of(Session), CSV_BODY)}, query=SessionQuery),
    Operation("GET", "/v1/sessions/{sessionId}", get_session, "One session", "viewer", {200: Session}),
    Operation("POST", "/v1/sessions/{sessionId}/finalize", finalize_session, "Finalize a session (force: recompute it)", "operator",
              {200: Finalized}, query=FinalizeQuery, errors=(409,), before=_session_before),
    Operation("POST", "/v1/tokens", token_list.create_token, "Add an idTag to the list of who may charge", "operator", {201: Token},
              body=NewToken, errors=(409,)),
    Operation("GET", "/v1/tokens", token_list.list_tokens, "The token list, by idTag", "viewer", {200: page_of(Token)},
              query=TokenQuery),
    Operation("GET", "/v1/tokens/{idTag}", token_list.get_token, "One token (idTags are case-insensitive)", "viewer", {200: Token}),
    Operation("PUT", "/v1/tokens/{idTag}", token_list.replace_token,
              "Replace a token (a session keeps the status its idTag had at its start)", "operator", {200: Token},
              body=ReplacedToken, before=_token_before),
    Operation("DELETE", "/v1/tokens/{idTag}", token_list.delete_token, "Remove a token from the list", "operator", {204: None},
              before=_token_before),
    Operation("GET", "/v1/sites/{siteId}/load", get_site_load,
              "A site's power limit shared among its Active sessions: shares, measured power, profiles sent and their outcomes",
              "viewer", {200: SiteLoad}),
    Operation("POST", "/v1/gateway/authorize", token_list.authorize, "OCPP 1.6 idTagInfo for an idTag at a charger (Authorize)",
              "gateway", {200: Authorized}, body=AuthorizeRequest),
), "Chargers' live state, connectors, charging sessions, and who may charge")
