"""The operator's side of the partners (CONTRACT 12): create one (its token A, shown once, and
our versions URL to give it), list them with their roles, endpoints, status and push backlog,
and register this platform at a partner's versions URL with the token A it gave us."""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from services.ocpi import store
from services.ocpi.credentials import RegistrationFailed, new_token, register_at
from services.ocpi.transport import PREFIX, base_url
from shared.app import POOL
from shared.errors import Conflict
from shared.http import Problem, found, json_response, parse_body, parse_query, path_uuid
from shared.openapi import Fragment, Operation, ResponseModel, page_of
from shared.pagination import PageQuery, after_key, encode_cursor

_LIST = "ocpi-partners"


class NewPartner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f]+$")]


class Registration(BaseModel):
    model_config = ConfigDict(extra="forbid")
    versionsUrl: Annotated[str, Field(pattern=r"^https?://\S+$", max_length=255)]
    token: Annotated[str, Field(pattern=r"^[\x21-\x7e]{1,64}$")]


class Endpoint(ResponseModel):
    identifier: str
    role: str
    url: str


class Partner(ResponseModel):
    partnerId: uuid.UUID
    name: str
    status: str
    version: str | None
    versionsUrl: str | None
    roles: list[dict[str, Any]]
    endpoints: list[Endpoint]
    pushBacklog: int
    pushesRefused: int
    lastPushAt: datetime | None
    lastPushError: str | None
    pushRetryAt: datetime | None
    registeredAt: datetime | None
    createdAt: datetime
    updatedAt: datetime


class CreatedPartner(ResponseModel):
    partnerId: uuid.UUID
    name: str
    status: str
    tokenA: str
    versionsUrl: str
    createdAt: datetime


def _partner(row) -> dict[str, Any]:
    return Partner.body(
        partnerId=row["partner_id"], name=row["name"], status=row["status"], version=row["version"],
        versionsUrl=row["versions_url"], roles=row["roles"], endpoints=row["endpoints"],
        pushBacklog=row["push_backlog"], pushesRefused=row["pushes_refused"],
        lastPushAt=row["last_push_at"], lastPushError=row["last_push_error"], pushRetryAt=row["push_retry_at"],
        registeredAt=row["registered_at"], createdAt=row["created_at"], updatedAt=row["updated_at"],
    )


async def create_partner(request: web.Request) -> web.Response:
    body = await parse_body(request, NewPartner)
    token_a = new_token()
    async with request.app[POOL].acquire() as conn:
        row = await store.partners.create(conn, uuid.uuid4(), body.name, token_a)
    if row is None:
        raise Conflict(f"a partner is named {body.name!r} already")
    return json_response(CreatedPartner.body(
        partnerId=row["partner_id"], name=row["name"], status=row["status"], tokenA=token_a,
        versionsUrl=f"{base_url(request)}{PREFIX}/versions", createdAt=row["created_at"]), status=201)


async def list_partners(request: web.Request) -> web.Response:
    query = parse_query(request, PageQuery)
    async with request.app[POOL].acquire() as conn:
        rows = await store.partners.page(conn, after=after_key(query.cursor, _LIST), limit=query.limit)
    items = rows[:query.limit]
    next_cursor = encode_cursor(_LIST, items[-1]["name"]) if len(rows) > query.limit and items else None
    return json_response({"items": [_partner(r) for r in items], "nextCursor": next_cursor})


async def register_partner(request: web.Request) -> web.Response:
    """Register this platform at the partner: 200 with the partner registered; 409 when it is
    registered already; 422 when the partner's side of the handshake did not work with this URL and
    token (nothing changed)."""
    partner_id = path_uuid(request, "partnerId", "partner")
    body = await parse_body(request, Registration)
    async with request.app[POOL].acquire() as conn:
        row = found(await store.partners.get(conn, partner_id), "partner", f"no partner {partner_id}")
    if row["status"] == "REGISTERED":
        raise Conflict(f"partner {row['name']!r} is registered; it may register again with PUT on our credentials")
    try:
        await register_at(request.app, partner_id, versions_url=body.versionsUrl, token_a=body.token, base=base_url(request))
    except RegistrationFailed as exc:
        raise Problem(422, "Partner refused", f"registering at the partner failed: {exc}") from None
    async with request.app[POOL].acquire() as conn:
        return json_response(_partner(await store.partners.with_pushes(conn, partner_id)))


API = Fragment("ocpi partners", (
    Operation("POST", "/v1/ocpi/partners", create_partner, "Create an OCPI partner: its token A, shown once", "admin",
              {201: CreatedPartner}, body=NewPartner, errors=(409,), redact=("tokenA",)),
    Operation("GET", "/v1/ocpi/partners", list_partners, "OCPI partners: roles, endpoints, status, push backlog", "viewer",
              {200: page_of(Partner)}, query=PageQuery),
    Operation("POST", "/v1/ocpi/partners/{partnerId}/register", register_partner,
              "Register this platform at the partner (its versions URL and token A)", "admin", {200: Partner},
              body=Registration, errors=(409, 422)),
), "OCPI roaming partners")
