"""Gateway fixtures: real gateway processes' apps on free ports in front of the test CPMS, and real
OCPP 1.6J charge points (the `ocpp` library's ChargePoint over `websockets`) that connect to them."""
from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import websockets
from aiohttp import web
from aiohttp.test_utils import TestServer
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action

from services.gateway.app import create_gateway_app
from tests.support import Api, TcpProxy, unique_id


@dataclass
class Gateway:
    server: TestServer
    app: web.Application

    @property
    def http_url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    def ws_url(self, charge_point_id: str, path: str = "ocpp16") -> str:
        return f"ws://127.0.0.1:{self.server.port}/{path}/{charge_point_id}"


def api_url(api: Api) -> str:
    return str(api.client.make_url("")).rstrip("/")


@pytest.fixture
async def make_gateway(make_settings, api: Api) -> AsyncIterator:
    """`await make_gateway(base_url=..., **settings overrides)`: one gateway process's app, in
    front of the test CPMS unless `base_url` says otherwise; closed after the test."""
    started: list[TestServer] = []

    async def make(*, base_url: str | None = None, **overrides: Any) -> Gateway:
        values = {"call_deadline_seconds": 8.0, **overrides}
        app = create_gateway_app(make_settings(**values), base_url=base_url or api_url(api))
        server = TestServer(app)
        await server.start_server()
        started.append(server)
        return Gateway(server, app)

    yield make
    for server in reversed(started):
        await server.close()


@pytest.fixture
async def gateway(make_gateway) -> Gateway:
    return await make_gateway()


@pytest.fixture
async def ingest_proxy(api: Api) -> AsyncIterator[TcpProxy]:
    """A way to the test CPMS that a test can freeze (ingest is slow) and thaw."""
    proxy = TcpProxy("127.0.0.1", api.client.server.port)
    await proxy.start()
    yield proxy
    await proxy.close()


class Charger(ChargePoint):
    """A charge point as chargers are: it answers the central system's commands (as told by
    `answers`), and its calls are the library's."""

    def __init__(self, charge_point_id: str, connection: Any) -> None:
        super().__init__(charge_point_id, connection, response_timeout=20)
        self.received: list[tuple[str, dict]] = []
        self.answers: dict[str, Any] = {}

    @on(Action.reset)
    def on_reset(self, type: str) -> call_result.Reset:
        self.received.append(("Reset", {"type": type}))
        return call_result.Reset(status=self.answers.get("Reset", "Accepted"))

    @on(Action.change_configuration)
    def on_change_configuration(self, key: str, value: str) -> call_result.ChangeConfiguration:
        self.received.append(("ChangeConfiguration", {"key": key, "value": value}))
        return call_result.ChangeConfiguration(status="Accepted")

    @on(Action.remote_start_transaction)
    def on_remote_start_transaction(self, id_tag: str, **_: Any) -> call_result.RemoteStartTransaction:
        self.received.append(("RemoteStartTransaction", {"idTag": id_tag}))
        return call_result.RemoteStartTransaction(status="Accepted")

    async def boot(self) -> call_result.BootNotification:
        return await self.call(call.BootNotification(charge_point_model="Eve Single", charge_point_vendor="Alfen",
                                                     firmware_version="6.1.2"))


def basic(charge_point_id: str, secret: str) -> dict[str, str]:
    token = base64.b64encode(f"{charge_point_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@contextlib.asynccontextmanager
async def connected(gateway: Gateway, charge_point_id: str, secret: str, *, path: str = "ocpp16") -> AsyncIterator[Charger]:
    """A charger connected to `gateway` (Basic auth, subprotocol ocpp1.6), serving its socket."""
    async with websockets.connect(gateway.ws_url(charge_point_id, path), subprotocols=["ocpp1.6"],
                                  additional_headers=basic(charge_point_id, secret)) as socket:
        charger = Charger(charge_point_id, socket)
        serving = asyncio.create_task(charger.start())
        try:
            yield charger
        finally:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await serving


@pytest.fixture
async def registered(api: Api):
    """`await registered()`: a new registered charger's (id, secret)."""

    async def register(secret: str = "gateway-secret-1") -> tuple[str, str]:
        cp = unique_id()
        status, body = await api.admin("POST", "/v1/chargers", {"chargePointId": cp, "secret": secret})
        assert status == 201, body
        return cp, secret

    return register
