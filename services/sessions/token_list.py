"""Who may charge, over HTTP: the handlers of the operators' token list (`/v1/tokens`) and of the
gateway's question (`POST /v1/gateway/authorize`), answered by the same rule that judges a session
at its start. Their routes are listed in app.py."""
from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from services.sessions import known_sites, metrics, roaming, store
from services.sessions.authorization import TokenState, decide, policy_of
from services.sessions.models import AuthorizeRequest, NewToken, ReplacedToken, TokenQuery
from services.sessions.responses import Token
from shared.app import POOL, SETTINGS
from shared.errors import DomainError
from shared.events import ID_TAG_MAX
from shared.http import found, json_response, parse_body, parse_query
from shared.pagination import after_key, page
from shared.realtime_authorization import REALTIME_AUTHORIZER


async def create_token(request: web.Request) -> web.Response:
    new = await parse_body(request, NewToken)
    new.check_parent(new.idTag)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        await _known_sites(conn, new.siteIds)
        row = await store.tokens.create_token(conn, new.idTag, new.columns())
    return json_response(Token.from_row(row), status=201)


async def replace_token(request: web.Request) -> web.Response:
    id_tag = request.match_info["idTag"]
    replaced = await parse_body(request, ReplacedToken)
    if replaced.idTag is not None and replaced.idTag.lower() != id_tag.lower():
        raise DomainError("the body names another token than the path",
                          errors=[{"loc": ["idTag"], "msg": f"must be {id_tag!r} (or left out)"}])
    replaced.check_parent(id_tag)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        await _known_sites(conn, replaced.siteIds)
        row = found(await store.tokens.replace_token(conn, id_tag, replaced.columns()), "token", f"no token {id_tag!r}")
    return json_response(Token.from_row(row))


async def _known_sites(conn, site_ids: list | None) -> None:
    if site_ids:
        await known_sites.require_known(conn, site_ids, loc=("siteIds",), each=True)


async def delete_token(request: web.Request) -> web.Response:
    id_tag = request.match_info["idTag"]
    async with request.app[POOL].acquire() as conn, conn.transaction():
        found(await store.tokens.delete_token(conn, id_tag) or None, "token", f"no token {id_tag!r}")
    return web.Response(status=204)


async def get_token(request: web.Request) -> web.Response:
    id_tag = request.match_info["idTag"]
    async with request.app[POOL].acquire() as conn:
        row = found(await store.tokens.token(conn, id_tag), "token", f"no token {id_tag!r}")
    return json_response(Token.from_row(row))


async def list_tokens(request: web.Request) -> web.Response:
    """The list by idTag (case-insensitively), filtered by status and a substring of the idTag."""
    query = parse_query(request, TokenQuery)
    after = after_key(query.cursor, "token")
    async with request.app[POOL].acquire() as conn:
        rows = await store.tokens.tokens_page(conn, status=query.status, search=query.q, after=after, limit=query.limit)
    return json_response(page(rows, query.limit, Token.from_row, lambda r: ("token", r["id_tag_key"])))


async def authorize(request: web.Request) -> web.Response:
    """OCPP 1.6 idTagInfo for an idTag at a charger, now. An unknown tag is an answer (Accepted or
    Invalid, by CPMS_AUTHORIZATION), never an error; a tag OCPP cannot hold is Invalid."""
    asked = await parse_body(request, AuthorizeRequest)
    policy = policy_of(request.app[SETTINGS])
    if not 1 <= len(asked.idTag) <= ID_TAG_MAX:
        info = decide(None, None, mode="list", at=datetime.now(UTC), site_id=None, concurrent_sessions=0)
    else:
        verdict = None
        async with request.app[POOL].acquire() as conn:
            row = await store.tokens.token(conn, asked.idTag)
            token = TokenState.of(row)
            parent = TokenState.of(await store.tokens.token(conn, token.parent_id_tag)) if token and token.parent_id_tag else None
            charger = await store.chargers.charger(conn, asked.chargePointId)
            going = await store.tokens.going_sessions(conn, asked.idTag) if token and token.max_concurrent_sessions else 0
        if token is None:  # not on the operators' list: perhaps a roaming partner's token
            verdict = await roaming.authorize_now(request.app[POOL], request.app[REALTIME_AUTHORIZER], id_tag=asked.idTag,
                                                  charge_point_id=asked.chargePointId, connector_id=asked.connectorId)
        info = decide(token, parent, mode=policy.mode, at=datetime.now(UTC),
                      site_id=charger["site_id"] if charger else None, concurrent_sessions=going, partner_verdict=verdict)
    metrics.AUTHORIZATIONS.labels("authorize", info.status).inc()
    return json_response({"idTagInfo": info.body()})
