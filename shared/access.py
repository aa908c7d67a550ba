"""Who may do what, and the trail of what they did (CONTRACT section 10).

Every route names the least role it needs (`Operation.auth`): the gateway routes take the gateway
key; the operator routes a token of an operator whose role is at least the route's (viewer <
operator < finance < admin), or the bootstrap CPMS_ADMIN_TOKEN (actor `admin`). A valid token of
too small a role is a 403. Every accepted write of an operator appends an audit entry (who, what,
the entity before and after) to the service's outbox as `audit.recorded`; ingest keeps the trail."""
from __future__ import annotations

import hmac
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from shared import operators
from shared.domain import AuditRecorded
from shared.http import Problem
from shared.openapi import Operation

ACTOR = web.RequestKey("actor", tuple)  # request[ACTOR]: (name, role) of the operator of this request
OPEN_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/metrics", "/openapi.json"})
_ID_FIELDS = ("chargePointId", "siteId", "settlementId", "sessionId", "commandId", "idTag", "name", "tariffId")
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Route:
    """What the access middleware needs to know of one operation."""

    operation: Operation
    schema: str  # the service's schema: where its audit entries are written

    @property
    def entity(self) -> str:
        segment = self.operation.path.split("/")[2]  # /v1/<entities>/...
        return segment[:-1] if segment.endswith("s") else segment


def _presented(request: web.Request) -> str:
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    return presented.strip() if scheme.lower() == "bearer" else ""


def _unauthorized() -> Problem:
    return Problem(401, "Unauthorized", "a valid bearer key is required", headers={"WWW-Authenticate": "Bearer"})


def access_middleware(*, gateway_key: str, admin_token: str, routes: dict[tuple[str, str], Route],
                      lookup: Callable[[web.Request, str], Awaitable[tuple[str, str] | None]],
                      audit: Callable[[web.Request, str, AuditRecorded], Awaitable[None]]):
    """`lookup(request, token)`: (name, role) or None, from the process's copy of the operators;
    `audit(request, schema, entry)`: write an audit entry to that schema's outbox and publish it."""
    gateway_bytes, admin_bytes = gateway_key.encode(), admin_token.encode()

    @web.middleware
    async def middleware(request: web.Request, handler) -> web.StreamResponse:
        path = request.path
        if path in OPEN_PATHS or not path.startswith("/v1/"):
            return await handler(request)
        resource = request.match_info.route.resource
        route = routes.get((request.method, resource.canonical)) if resource is not None else None
        needed = route.operation.auth if route else ("gateway" if path.startswith("/v1/gateway/") else "viewer")
        presented = _presented(request)
        if needed == "gateway":
            if not hmac.compare_digest(presented.encode(), gateway_bytes):
                raise _unauthorized()
            return await handler(request)
        if needed == "none":
            return await handler(request)
        if hmac.compare_digest(presented.encode(), admin_bytes):
            actor = (operators.BOOTSTRAP_ADMIN, "admin")
        else:
            actor = await lookup(request, presented)
            if actor is None:
                raise _unauthorized()
        if not operators.allows(actor[1], needed):
            raise Problem(403, "Forbidden", f"the {actor[1]} role may not do this; it needs {needed} or more")
        request[ACTOR] = actor
        if route is None or request.method not in WRITES or needed == "viewer":  # what a viewer may call changes nothing
            return await handler(request)
        before = await route.operation.before(request) if route.operation.before else None
        response = await handler(request)
        if 200 <= response.status < 300:
            await audit(request, route.schema, _entry(request, route, actor, before, response))
        return response

    return middleware


def _entry(request: web.Request, route: Route, actor: tuple[str, str], before: Any, response: web.StreamResponse) -> AuditRecorded:
    after = None
    body = getattr(response, "body", None)
    if isinstance(body, bytes) and body and (response.content_type or "").endswith("json"):
        after = orjson.loads(body)
        if isinstance(after, dict) and "session" in after and route.entity == "session":
            after = after["session"]  # finalize answers {"session": ..., "force": ...}
        if isinstance(after, dict):
            after = {k: v for k, v in after.items() if k not in route.operation.redact}
    entity_id = _entity_id(request, route, after if isinstance(after, dict) else None)
    return AuditRecorded(
        entryId=uuid.uuid4(), at=datetime.now(UTC), actor=actor[0], role=actor[1], method=request.method,
        path=request.path, entity=route.entity, entityId=entity_id,
        before=before if isinstance(before, dict) else None, after=after if isinstance(after, dict) else None,
    )


def _entity_id(request: web.Request, route: Route, after: dict | None) -> str | None:
    names = re.findall(r"{(\w+)}", route.operation.path)
    if names:
        return request.match_info.get(names[0])
    for field in _ID_FIELDS:
        if after and after.get(field) is not None:
            return str(after[field])
    return None


def routes_of(services: list) -> dict[tuple[str, str], Route]:
    """Every operation of these services (ServiceSpec) by (method, path template)."""
    return {(op.method, op.path): Route(op, service.schema) for service in services for op in service.api.operations}
