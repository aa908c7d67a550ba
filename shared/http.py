"""The HTTP edge every service shares: problem+json errors, bearer-key auth, body and content-type
checks, request metrics, and JSON in and out."""
from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

import orjson
import pydantic
from aiohttp import web

from shared import jsonutil, metrics
from shared.broker import PublishFailed
from shared.db import is_connection_error
from shared.errors import DomainError, NotFound
from shared.logs import REQUEST_ID

log = logging.getLogger(__name__)

PROBLEM_TYPE = "application/problem+json"
M = TypeVar("M", bound=pydantic.BaseModel)
T = TypeVar("T")
BODY_LIMIT = web.AppKey("max_body_bytes", int)
ACCESS_LOG = web.AppKey("access_log", bool)  # CPMS_ACCESS_LOG: a log line per request
# How deep a body's arrays and objects may nest. The deepest body of this API (a charging profile,
# an OCPI tariff) nests about 6 levels; what a body carries is stored and hashed inside a few more levels
# (envelopes, the archive, the audit trail), and orjson writes no more than 254.
MAX_NESTING = 64
access_log = logging.getLogger("cpms.access")
# Set by an outer middleware that answers this request's errors in its own format (OCPI's envelope).
OWN_ERRORS = web.RequestKey("own_errors", bool)
HandlerFn = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Problem(Exception):
    """Raise from a handler to answer with an RFC 9457 problem document."""

    def __init__(
        self, status: int, title: str, detail: str = "", *, errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status, self.title, self.detail = status, title, detail
        self.errors, self.headers, self.extra = errors, headers or {}, extra or {}

    def response(self) -> web.Response:
        body: dict[str, Any] = {
            "type": f"https://cpms.dev/problems/{self.title.lower().replace(' ', '-')}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail or self.title,
        }
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extra)
        return web.Response(status=self.status, body=jsonutil.dumps(body), content_type=PROBLEM_TYPE, headers=self.headers)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=jsonutil.dumps(data), content_type="application/json", headers=headers)


def validation_problem(exc: pydantic.ValidationError, *, loc_prefix: tuple = ()) -> Problem:
    return Problem(400, "Invalid request", "the request body or parameters are not valid", errors=errors_of(exc, loc_prefix))


def errors_of(exc: pydantic.ValidationError, loc_prefix: tuple = ()) -> list[dict[str, Any]]:
    return [{"loc": [*loc_prefix, *err["loc"]], "msg": err["msg"]} for err in exc.errors(include_url=False, include_input=False)]


async def read_json_as_sent(request: web.Request, *, decimals: bool = False) -> tuple[Any, bytes]:
    """The request body as JSON and as its bytes, after the content-type, size and nesting checks
    (415, 413, 400). With `decimals`, JSON numbers become Decimal straight from their text. NUL
    characters are left in: the caller decides what to do with them."""
    if request.content_type != "application/json":
        raise Problem(415, "Unsupported media type", "send the body as application/json")
    raw = await request.read()  # aiohttp raises 413 past client_max_size
    if jsonutil.nests_deeper_than(raw, MAX_NESTING):
        raise Problem(400, "Nested too deeply", f"the body is nested more than {MAX_NESTING} levels deep (arrays and objects)")
    try:
        data = orjson.loads(raw)  # what is JSON is decided here for every route: UTF-8, no lone surrogate, numbers a double holds
        return (_decimal_json(raw) if decimals else data), raw
    except ValueError as exc:  # not JSON, bad UTF-8, NaN/Infinity
        raise Problem(400, "Invalid JSON", f"the body is not valid JSON: {exc}") from None


async def read_json(request: web.Request) -> Any:
    """The request body as JSON (415, 413, 400 as `read_json_as_sent`; 400 for a NUL in any string)."""
    data, raw = await read_json_as_sent(request)
    reject_nul(raw, data)
    return data


def _nul_at(value: Any, loc: tuple) -> tuple | None:
    if isinstance(value, str):
        return loc if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if found := _nul_at(key, (*loc, key)) or _nul_at(item, (*loc, key)):
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            if found := _nul_at(item, (*loc, index)):
                return found
    return None


def reject_nul(raw: bytes, data: Any) -> None:
    """A 400 for a NUL character in any string of the body: Postgres text and jsonb cannot hold
    one, so it would fail later, after the request was promised."""
    if b"\\u0000" not in raw:
        return
    loc = _nul_at(data, ())
    if loc is not None:
        raise Problem(400, "Invalid request", "strings must not contain NUL characters",
                      errors=[{"loc": list(loc), "msg": "must not contain NUL (\\u0000) characters"}])


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


async def parse_body(request: web.Request, model: type[M], *, decimals: bool = False,
                     context: dict[str, Any] | None = None) -> M:
    """The body validated by `model` (415, 413, 400 naming the field). With `decimals`, JSON
    numbers become Decimal straight from their text (money never passes through a binary float)."""
    return validated(model, await read_decimal_json(request) if decimals else await read_json(request), context=context)


async def read_decimal_json(request: web.Request) -> Any:
    """The body as JSON with its numbers as Decimal, exactly as written (checks as `read_json`)."""
    data, raw = await read_json_as_sent(request, decimals=True)
    reject_nul(raw, data)
    return data


def validated(model: type[M], data: Any, *, context: dict[str, Any] | None = None) -> M:
    """`data` as `model`, or a 400 problem naming each field that is wrong."""
    try:
        return model.model_validate(data, context=context)
    except pydantic.ValidationError as exc:
        raise validation_problem(exc) from None


def _decimal_json(raw: bytes) -> Any:
    return json.loads(raw, parse_float=Decimal, parse_constant=_no_constants)


def path_uuid(request: web.Request, name: str, what: str) -> UUID:
    """A UUID path parameter; anything else names no `what` (404)."""
    try:
        return UUID(request.match_info[name])
    except ValueError:
        raise NotFound(f"no {what} {request.match_info[name]!r}", title=f"{what.capitalize()} not found") from None


def found(value: T | None, what: str, detail: str) -> T:
    """`value`, or a 404 problem: no such `what`."""
    if value is None:
        raise NotFound(detail, title=f"{what.capitalize()} not found")
    return value


def parse_query(request: web.Request, model: type[M]) -> M:
    for name, value in request.query.items():
        if "\x00" in value:
            raise Problem(400, "Invalid query", "the query parameters are not valid",
                          errors=[{"loc": ["query", name], "msg": "must not contain NUL characters"}])
    try:
        return model.model_validate(dict(request.query))
    except pydantic.ValidationError as exc:
        raise Problem(400, "Invalid query", "the query parameters are not valid", errors=errors_of(exc, ("query",))) from None


def route_template(request: web.Request) -> str:
    route = request.match_info.route
    resource = route.resource
    return resource.canonical if resource is not None else "unmatched"


MAX_PARAMETER_LENGTH = 1024


def unstorable_parameter(request: web.Request) -> Problem | None:
    """A path or query value no route could store or look up (a NUL, which Postgres text cannot
    hold, or an absurd length): a 400 naming it, before any handler sees it."""
    places = [("path", request.match_info.items())]
    if request.query_string:
        places.append(("query", request.query.items()))
    for place, items in places:
        for name, value in items:
            if "\x00" in value or len(value) > MAX_PARAMETER_LENGTH:
                return Problem(400, f"Invalid {place}", f"the {place} parameter {name} cannot be a value of this API",
                               errors=[{"loc": [place, name],
                                        "msg": f"must not contain NUL characters nor exceed {MAX_PARAMETER_LENGTH} characters"}])
    return None


@web.middleware
async def problem_middleware(request: web.Request, handler: HandlerFn) -> web.StreamResponse:
    """Every failure leaves as problem+json: never a stack trace, never a bare text body."""
    if request.get(OWN_ERRORS):
        return await handler(request)
    if (request.match_info or request.query_string) and (bad := unstorable_parameter(request)) is not None:
        return bad.response()
    try:
        return await handler(request)
    except Problem as problem:
        return problem.response()
    except DomainError as refused:
        return Problem(refused.status, refused.title, refused.detail, errors=refused.errors, extra=refused.extra).response()
    except web.HTTPRequestEntityTooLarge:
        return Problem(413, "Payload too large", f"the body exceeds {request.app[BODY_LIMIT]} bytes").response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return Problem(exc.status, exc.reason, exc.text if exc.text and not exc.text.startswith(str(exc.status)) else exc.reason,
                       headers={k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}).response()
    except PublishFailed:
        return Problem(503, "Service unavailable", "the message broker did not confirm in time; retry later",
                       headers={"Retry-After": "1"}).response()
    except Exception as exc:
        if is_connection_error(exc):
            return Problem(503, "Service unavailable", "the database is unavailable; retry later",
                           headers={"Retry-After": "1"}).response()
        log.exception("unhandled error", extra={"route": route_template(request), "method": request.method})
        return Problem(500, "Internal server error", "an unexpected error occurred").response()


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@web.middleware
async def metrics_middleware(request: web.Request, handler: HandlerFn) -> web.StreamResponse:
    """Times and counts every request, and gives it a request id: the caller's `X-Request-Id`
    when it is a sane one, else a new one; returned in the answer and written in every log line."""
    started = time.perf_counter()
    status = 500
    sent = request.headers.get("X-Request-Id")
    request_id = sent if sent is not None and _REQUEST_ID.match(sent) else uuid.uuid4().hex
    REQUEST_ID.set(request_id)
    try:
        response = await handler(request)
        status = response.status
        if not response.prepared:  # a streamed answer has sent its headers already
            response.headers["X-Request-Id"] = request_id
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        route = route_template(request)
        seconds = time.perf_counter() - started
        metrics.HTTP_REQUESTS.labels(request.method, route, f"{status // 100}xx").inc()
        metrics.HTTP_LATENCY.labels(request.method, route).observe(seconds)
        if request.app.get(ACCESS_LOG):  # the path only: a query may carry what a log should not
            access_log.info("request", extra={"method": request.method, "path": request.path, "route": route,
                                              "status": status, "duration_ms": round(seconds * 1000, 2),
                                              "remote": request.remote})
