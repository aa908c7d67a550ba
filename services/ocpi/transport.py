"""OCPI 2.2.1 transport and format: the response envelope, the status codes, the partner's
credentials token in `Authorization`, the request headers, and a middleware that answers every
route under /ocpi with an envelope (never a problem document, never a 5xx).

Status codes (status_codes.asciidoc): 1000 success; 2000 generic client error, 2001 invalid or
missing parameters, 2002 not enough information, 2003 unknown Location, 2004 unknown Token;
3000 generic server error, 3001 unable to use the client's API, 3002 unsupported version, 3003 no
matching endpoints. "If a request is syntactically valid JSON and addresses an existing resource,
a HTTP error MUST NOT be returned": a 3xxx answers HTTP 200."""
from __future__ import annotations

import base64
import binascii
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

import orjson
import pydantic
from aiohttp import web

from services.ocpi import store
from shared.app import POOL, SETTINGS
from shared.broker import PublishFailed
from shared.db import is_connection_error
from shared.http import MAX_NESTING, OWN_ERRORS, errors_of, json_response, unstorable_parameter
from shared import jsonutil

log = logging.getLogger(__name__)

M = TypeVar("M", bound=pydantic.BaseModel)
VERSION = "2.2.1"
PREFIX = "/ocpi"
BASE = f"{PREFIX}/{VERSION}"

SUCCESS = 1000
CLIENT_ERROR, INVALID_PARAMETERS, NOT_ENOUGH_INFORMATION, UNKNOWN_LOCATION, UNKNOWN_TOKEN = 2000, 2001, 2002, 2003, 2004
SERVER_ERROR, CLIENT_API_UNUSABLE, UNSUPPORTED_VERSION, NO_MATCHING_ENDPOINTS = 3000, 3001, 3002, 3003

# The routes a partner may call with token A, before it registered (credentials.asciidoc,
# "Registration": versions, version details, and the POST that registers; GET answers the token;
# PUT and DELETE answer 405, as the credentials module requires of a client not registered yet).
REGISTRATION_ROUTES = frozenset({
    ("GET", f"{PREFIX}/versions"), ("GET", BASE),
    *((method, f"{BASE}/credentials") for method in ("GET", "POST", "PUT", "DELETE")),
})


class OcpiError(Exception):
    """Raise from an OCPI handler: answered as an envelope with `status_code`, on `http_status`."""

    def __init__(self, status_code: int, message: str, *, http_status: int = 200, data: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status_code, self.message, self.http_status, self.data = status_code, message, http_status, data
        self.headers = headers or {}

    def response(self) -> web.Response:
        return envelope_response(self.data, status_code=self.status_code, message=self.message, http_status=self.http_status,
                                 headers=self.headers)


def invalid(message: str, data: Any = None) -> OcpiError:
    """2001, HTTP 400: the request's body, query or path is not what the specification allows."""
    return OcpiError(INVALID_PARAMETERS, message, http_status=400, data=data)


def unknown_object(what: str, key: str) -> OcpiError:
    """2000, HTTP 404: no such object (2003 and 2004 for a Location and a Token: `unknown_location`...)."""
    return OcpiError(CLIENT_ERROR, f"unknown {what} {key!r}", http_status=404)


def unknown_location(key: str) -> OcpiError:
    return OcpiError(UNKNOWN_LOCATION, f"unknown location {key!r}", http_status=404)


def unknown_token(key: str) -> OcpiError:
    return OcpiError(UNKNOWN_TOKEN, f"unknown token {key!r}", http_status=404)


def method_not_allowed(message: str) -> OcpiError:
    """HTTP 405, as the credentials module requires (a second POST, a PUT or DELETE before one)."""
    return OcpiError(CLIENT_ERROR, message, http_status=405)


def timestamp(at: datetime | None = None) -> str:
    """OCPI's DateTime: UTC, `Z`, whole seconds (types.asciidoc allows fractions; whole is safest)."""
    return (at or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def envelope(data: Any, *, status_code: int = SUCCESS, message: str = "Success") -> dict[str, Any]:
    body: dict[str, Any] = {"status_code": status_code, "status_message": message, "timestamp": timestamp()}
    if data is not None:
        body = {"data": data, **body}
    return body


def envelope_response(data: Any, *, status_code: int = SUCCESS, message: str = "Success", http_status: int = 200,
                      headers: dict[str, str] | None = None) -> web.Response:
    return json_response(envelope(data, status_code=status_code, message=message), status=http_status, headers=headers)


def ok(data: Any = None, *, http_status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A 1000 envelope around `data`."""
    return envelope_response(data, http_status=http_status, headers=headers)


# --- the partner of a request ---------------------------------------------------------------------

@dataclass(frozen=True)
class Partner:
    """The partner whose token a request carries."""

    partner_id: UUID
    name: str
    status: str  # PENDING (token A), REGISTERED (token C), UNREGISTERED
    token_kind: str  # "A" or "C"
    roles: list[dict[str, Any]]
    endpoints: list[dict[str, Any]]

    @property
    def registered(self) -> bool:
        return self.status == "REGISTERED"


PARTNER = web.RequestKey("ocpi_partner", Partner)
PRESENTED_TOKEN = web.RequestKey("ocpi_presented_token", str)  # the token in clear: GET credentials answers it
# (country_code, party_id) of the party behind the request: the OCPI-from-* headers behind a hub,
# else the partner's own first role.
SENDER_PARTY = web.RequestKey("ocpi_sender_party", tuple)

_TOKEN_TEXT = re.compile(r"^[\x21-\x7e]{1,64}$")


def presented_tokens(header: str) -> list[str]:
    """The credentials token(s) an `Authorization: Token ...` header may carry: OCPI 2.2.1 sends it
    base64 encoded (transport_and_format.asciidoc, "Authorization header"), older partners send it
    as it is; both readings are tried, the decoded one first."""
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() != "token" or not value:
        return []
    candidates = []
    try:
        decoded = base64.b64decode(value, validate=True).decode("ascii")
        if _TOKEN_TEXT.match(decoded):
            candidates.append(decoded)
    except (binascii.Error, ValueError):
        pass
    if _TOKEN_TEXT.match(value) and value not in candidates:
        candidates.append(value)
    return candidates


async def _authenticate(request: web.Request) -> Partner:
    candidates = presented_tokens(request.headers.get("Authorization", ""))
    if not candidates:
        raise OcpiError(CLIENT_ERROR, "an Authorization: Token header with a valid credentials token is required", http_status=401)
    async with request.app[POOL].acquire() as conn:
        found = await store.partners.by_token(conn, candidates)
    if found is None:
        raise OcpiError(CLIENT_ERROR, "the credentials token is not valid", http_status=401)
    row, token = found
    partner = Partner(partner_id=row["partner_id"], name=row["name"], status=row["status"], token_kind=row["token_kind"],
                      roles=row["roles"], endpoints=row["endpoints"])
    resource = request.match_info.route.resource
    route = (request.method, resource.canonical if resource is not None else request.path)
    if partner.token_kind != "C" and route not in REGISTRATION_ROUTES:
        raise OcpiError(CLIENT_ERROR, "this token only serves to register (credentials module); register first", http_status=401)
    request[PRESENTED_TOKEN] = token
    return partner


def _sender_party(request: web.Request, partner: Partner) -> tuple[str, str] | None:
    """The OCPI-to-* headers must name this platform; the OCPI-from-* ones name the sender (a hub
    forwards requests of many parties on one connection: transport_and_format.asciidoc, "Message
    routing")."""
    settings = request.app[SETTINGS]
    to = (request.headers.get("OCPI-to-country-code"), request.headers.get("OCPI-to-party-id"))
    if any(to) and ((to[0] or "").upper(), (to[1] or "").upper()) != (settings.ocpi_country_code, settings.ocpi_party_id):
        raise invalid(f"this platform is {settings.ocpi_country_code}/{settings.ocpi_party_id}, not {to[0]}/{to[1]} "
                      "(OCPI-to-country-code, OCPI-to-party-id)")
    sent = (request.headers.get("OCPI-from-country-code"), request.headers.get("OCPI-from-party-id"))
    if all(sent):
        if not (re.fullmatch(r"[A-Za-z]{2}", sent[0]) and re.fullmatch(r"[A-Za-z0-9]{3}", sent[1])):
            raise invalid("OCPI-from-country-code must be 2 letters and OCPI-from-party-id 3 letters or digits")
        return sent[0].upper(), sent[1].upper()
    if any(sent):
        raise invalid("OCPI-from-country-code and OCPI-from-party-id go together")
    role = next(iter(partner.roles), None)
    return (role["country_code"], role["party_id"]) if role else None


_ECHOED = ("X-Request-ID", "X-Correlation-ID")
_HEADER_VALUE = re.compile(r"^[\x21-\x7e]{1,255}$")


def _error_of(request: web.Request, exc: BaseException) -> OcpiError:
    if isinstance(exc, OcpiError):
        return exc
    if isinstance(exc, web.HTTPException):
        if exc.status == 413:
            return OcpiError(INVALID_PARAMETERS, f"the body exceeds {request.app[SETTINGS].max_body_bytes} bytes", http_status=413)
        if exc.status == 405:
            return OcpiError(CLIENT_ERROR, f"{request.method} is not allowed here", http_status=405,
                             headers={"Allow": exc.headers.get("Allow", "")})
        if exc.status == 404:
            return OcpiError(CLIENT_ERROR, f"no OCPI endpoint {request.path}", http_status=404)
        if exc.status < 500:
            return OcpiError(CLIENT_ERROR, exc.reason, http_status=exc.status)
    from shared.http import Problem  # the start-up gate and shared checks raise problems

    if isinstance(exc, Problem):
        if exc.status >= 500:  # starting, or a dependency away: a server error the client may retry
            return OcpiError(SERVER_ERROR, exc.detail or exc.title, headers={"Retry-After": "1"})
        return OcpiError(INVALID_PARAMETERS if exc.status in (400, 413, 415) else CLIENT_ERROR, exc.detail or exc.title,
                         http_status=exc.status, data=exc.errors)
    if isinstance(exc, PublishFailed) or is_connection_error(exc):
        return OcpiError(SERVER_ERROR, "a dependency of this platform is unavailable; retry later", headers={"Retry-After": "1"})
    log.exception("unhandled error in an OCPI route", extra={"method": request.method, "path": request.path})
    return OcpiError(SERVER_ERROR, "an unexpected error occurred")


@web.middleware
async def ocpi_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Every request under /ocpi: the partner authenticated by its token (HTTP 401 otherwise), the
    hub headers read, every failure an envelope, X-Request-ID and X-Correlation-ID echoed."""
    if not (request.path == PREFIX or request.path.startswith(PREFIX + "/")):
        return await handler(request)
    request[OWN_ERRORS] = True
    echoed = {name: value for name in _ECHOED if (value := request.headers.get(name)) and _HEADER_VALUE.match(value)}
    try:
        if (bad := unstorable_parameter(request)) is not None:
            raise invalid(bad.detail, bad.errors)
        partner = await _authenticate(request)
        request[PARTNER] = partner
        request[SENDER_PARTY] = _sender_party(request, partner)
        response = await handler(request)
    except Exception as exc:  # noqa: BLE001  every failure is an envelope
        response = _error_of(request, exc).response()
    if not response.prepared:
        for name, value in echoed.items():
            response.headers[name] = value
        response.headers.setdefault("X-Correlation-ID", echoed.get("X-Correlation-ID", echoed.get("X-Request-ID", uuid.uuid4().hex)))
    return response


# --- reading a request ---------------------------------------------------------------------------

async def read_body(request: web.Request, model: type[M]) -> M:
    """The body as `model`: 2001 (HTTP 400) for anything that is not JSON or not the object."""
    if request.content_type != "application/json":
        raise invalid("send the body as application/json")
    raw = await request.read()
    if jsonutil.nests_deeper_than(raw, MAX_NESTING):
        raise invalid(f"the body is nested more than {MAX_NESTING} levels deep")
    try:
        data = orjson.loads(raw)
    except ValueError as exc:
        raise invalid(f"the body is not valid JSON: {exc}") from None
    if b"\\u0000" in raw:
        raise invalid("strings must not contain NUL characters")
    return validated(model, data)


def validated(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise invalid("the request is not valid: " + "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in errors_of(exc)), errors_of(exc)) from None


def base_url(request: web.Request) -> str:
    """Where partners reach this platform: CPMS_OCPI_PUBLIC_URL, else the request's own origin."""
    configured = request.app[SETTINGS].ocpi_public_url
    return configured.rstrip("/") if configured else f"{request.scheme}://{request.host}"
