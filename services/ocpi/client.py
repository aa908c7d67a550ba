"""Calls to a partner's OCPI endpoints: its token in `Authorization: Token <base64>`, our identity
and the partner's in the OCPI-from/to headers, a fresh X-Request-ID and X-Correlation-ID, and the
answer's envelope read. What did not answer as OCPI raises `PartnerUnreachable`."""
from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from shared.app import SETTINGS

HTTP_SESSION = web.AppKey("ocpi_http_session", aiohttp.ClientSession)


class PartnerUnreachable(Exception):
    """The partner did not answer, or not with an OCPI envelope (a network error, a timeout, a 5xx)."""


@dataclass(frozen=True)
class Answer:
    http_status: int
    status_code: int | None  # the envelope's; None when the body had none
    message: str
    data: Any
    headers: dict[str, str]

    @property
    def succeeded(self) -> bool:
        return 200 <= self.http_status < 300 and self.status_code is not None and 1000 <= self.status_code < 2000


def authorization(token: str) -> str:
    return "Token " + base64.b64encode(token.encode()).decode()


def party_of(roles: list[dict[str, Any]]) -> tuple[str, str] | None:
    """(country_code, party_id) of a partner's first role: where our requests are addressed to."""
    role = next(iter(roles), None)
    return (role["country_code"], role["party_id"]) if role else None


async def call(app: web.Application, method: str, url: str, token: str, *, body: Any = None,
               to: tuple[str, str] | None = None, timeout: float | None = None) -> Answer:
    """One request to a partner; the answer whatever its status, or PartnerUnreachable."""
    settings = app[SETTINGS]
    request_id = str(uuid.uuid4())
    headers = {
        "Authorization": authorization(token), "X-Request-ID": request_id, "X-Correlation-ID": request_id,
        "OCPI-from-country-code": settings.ocpi_country_code, "OCPI-from-party-id": settings.ocpi_party_id,
    }
    if to is not None:
        headers.update({"OCPI-to-country-code": to[0], "OCPI-to-party-id": to[1]})
    data = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = orjson.dumps(body)
    try:
        async with app[HTTP_SESSION].request(
            method, url, data=data, headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout or settings.ocpi_push_timeout_seconds),
        ) as response:
            raw = await response.read()
            answer_headers = dict(response.headers)
            status = response.status
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
        raise PartnerUnreachable(f"{method} {url}: {type(exc).__name__}: {exc}") from None
    if status >= 500:
        raise PartnerUnreachable(f"{method} {url}: HTTP {status}")
    try:
        parsed = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        if 200 <= status < 300:
            raise PartnerUnreachable(f"{method} {url}: HTTP {status} without an OCPI envelope")
        return Answer(status, None, f"HTTP {status}", None, answer_headers)
    code = parsed.get("status_code")
    return Answer(status, code if isinstance(code, int) else None, str(parsed.get("status_message") or ""), parsed.get("data"),
                  answer_headers)


async def http_session_ctx(app: web.Application) -> AsyncIterator[None]:
    """One client session for every call to partners in this process."""
    app[HTTP_SESSION] = aiohttp.ClientSession(json_serialize=lambda v: orjson.dumps(v).decode())
    yield
    await app[HTTP_SESSION].close()
