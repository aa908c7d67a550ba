"""Helpers the tests share: an API client with the right keys, waiting for eventual state,
and a fake of the reference gateway's command API."""
from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

DEFAULT_PORTS = {"postgresql": 5432, "amqp": 5672}
GATEWAY_KEY = "test-gateway-key"
ADMIN_TOKEN = "test-admin-token"


def unique_id(prefix: str = "CP") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class Api:
    """A client of one running CPMS app that sends the gateway key or the admin token."""

    def __init__(self, client: TestClient, *, database_url: str) -> None:
        self.client, self.database_url = client, database_url

    async def _call(self, method: str, path: str, key: str | None, json: Any = None, **kwargs) -> tuple[int, Any]:
        headers = kwargs.pop("headers", {})
        if key is not None:
            headers.setdefault("Authorization", f"Bearer {key}")
        response = await self.client.request(method, path, json=json, headers=headers, **kwargs)
        body = await response.read()
        self.last_response = response
        if response.content_type in ("application/json", "application/problem+json"):
            return response.status, await response.json(content_type=None)
        return response.status, body.decode()

    async def gateway(self, method: str, path: str, json: Any = None, **kwargs) -> tuple[int, Any]:
        return await self._call(method, path, GATEWAY_KEY, json, **kwargs)

    async def admin(self, method: str, path: str, json: Any = None, **kwargs) -> tuple[int, Any]:
        return await self._call(method, path, ADMIN_TOKEN, json, **kwargs)

    async def anonymous(self, method: str, path: str, json: Any = None, **kwargs) -> tuple[int, Any]:
        return await self._call(method, path, None, json, **kwargs)

    async def send_events(self, *events: dict) -> tuple[int, Any]:
        """Post events as the reference gateway does: one request per event."""
        result: tuple[int, Any] = (0, None)
        for event in events:
            result = await self.gateway("POST", "/v1/gateway/events", event)
            assert result[0] == 202, result
        return result


async def eventually(probe: Callable[[], Awaitable[Any]], *, timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll `probe` until it returns a truthy value (returned) or raise with its last answer.
    For state that the consumers build after a 202: never a timing assertion, only a bound."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last answer: {last!r}")


@dataclass
class FakeGateway:
    """Plays a gateway's `POST /v1/gateway/commands` (the reference gateway's, or the CPMS's own with
    its 422 for a charger's CallError). Tests queue the answers it gives; with nothing queued it
    answers 200 with an Accepted response."""

    answers: list[Callable[[dict], Awaitable[web.StreamResponse]]] = field(default_factory=list)
    calls: list[dict] = field(default_factory=list)
    auth_headers: list[str | None] = field(default_factory=list)
    server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    def answer(self, status: int, body: dict | None = None, *, delay: float = 0.0) -> None:
        async def respond(_: dict) -> web.StreamResponse:
            if delay:
                await asyncio.sleep(delay)
            return web.json_response(body or {}, status=status)

        self.answers.append(respond)

    def call_error(self, error_code: str, description: str = "", details: dict | None = None) -> None:
        """Answer the next command as a gateway does when the charger answered a CallError: 422, a
        problem document carrying the charger's `errorCode`, `errorDescription` and `errorDetails`."""
        body = {"type": "about:blank", "title": "The charger answered with a CallError", "status": 422,
                "detail": f"{error_code}: {description}", "commandId": uuid.uuid4().hex,
                "errorCode": error_code, "errorDescription": description, "errorDetails": details or {}}

        async def respond(_: dict) -> web.StreamResponse:
            return web.json_response(body, status=422, content_type="application/problem+json")

        self.answers.append(respond)

    def calls_for(self, idempotency_key: str) -> list[dict]:
        return [c for c in self.calls if c.get("idempotencyKey") == idempotency_key]

    async def _commands(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.calls.append(body)
        self.auth_headers.append(request.headers.get("Authorization"))
        if self.answers:
            return await self.answers.pop(0)(body)
        return web.json_response({"commandId": uuid.uuid4().hex, "response": {"status": "Accepted"}})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/gateway/commands", self._commands)
        self.server = TestServer(app)
        await self.server.start_server()

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()


class TcpProxy:
    """A TCP relay between the CPMS and a real server, to play a network fault: `freeze()` stops
    passing bytes (the peer goes silent), `thaw()` passes them again, `drop()` cuts every connection."""

    def __init__(self, target_host: str, target_port: int, *, target_url: SplitResult | None = None) -> None:
        self.target = (target_host, target_port)
        self._target_url = target_url
        self._server: asyncio.base_events.Server | None = None
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    @classmethod
    def to(cls, url: str) -> TcpProxy:
        """A proxy to the server of a postgresql:// or amqp:// URL, which `proxy.url` reaches
        through the proxy once it is started."""
        parts = urlsplit(url)
        return cls(parts.hostname, parts.port or DEFAULT_PORTS[parts.scheme], target_url=parts)

    @property
    def url(self) -> str:
        """The URL given to `to`, at the proxy's address: the same user, database or virtual host."""
        user = self._target_url.netloc.rpartition("@")[0]
        address = f"127.0.0.1:{self.port}"
        return urlunsplit(self._target_url._replace(netloc=f"{user}@{address}" if user else address))

    async def start(self, port: int = 0) -> None:
        """Listen on `port` (0: a free one); after `close()`, `start(port=proxy.port)` plays the
        dependency coming back at the same address."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()
            self._writers.discard(writer)

    def freeze(self) -> None:
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    def drop(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def close(self) -> None:
        self.thaw()
        self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def free_port() -> int:
    """A port nothing listens on now (for a server whose address must be known before it starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
