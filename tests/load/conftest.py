"""Fixtures of the site power limit tests: a CPMS whose commands reach its own gateway, and a site
with a limit and chargers on it."""
from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from services.gateway.app import create_gateway_app
from shared.app import SETTINGS
from tests.support import Api

SECRET = "load-secret-1"
CAP_W = 11_000


@pytest.fixture
async def cpms_with_gateway(make_api) -> AsyncIterator[tuple[Api, str]]:
    """A CPMS whose commands go to its own gateway (bound first, so each knows the other's address),
    its shares following measured power every second; and the chargers' URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    api = await make_api(gateway_base_url=f"http://127.0.0.1:{port}", load_rebalance_seconds=1.0)
    gateway = create_gateway_app(api.client.server.app[SETTINGS], base_url=str(api.client.make_url("")).rstrip("/"))
    runner = web.AppRunner(gateway)
    await runner.setup()
    await web.SockSite(runner, listener).start()
    yield api, f"ws://127.0.0.1:{port}/ocpp16"
    await runner.cleanup()


async def limited_site(api: Api, max_power_kw: str, charger_ids: list[str]) -> str:
    status, site = await api.admin("POST", "/v1/sites", {"name": "Depot with a 22 kW connection", "maxPowerKw": max_power_kw})
    assert status == 201, site
    for cp in charger_ids:
        assert (await api.admin("POST", "/v1/chargers", {"chargePointId": cp, "secret": SECRET, "siteId": site["siteId"]}))[0] == 201
        status, body = await api.admin("PUT", f"/v1/chargers/{cp}/connectors/1",
                                       {"powerType": "AC_3_PHASE", "maxElectricPower": CAP_W, "maxVoltage": 230, "maxAmperage": 16})
        assert status == 200, body
    return site["siteId"]


async def site_load(api: Api, site_id: str) -> dict:
    status, load = await api.admin("GET", f"/v1/sites/{site_id}/load")
    assert status == 200, load
    return load


