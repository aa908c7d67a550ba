"""Fixtures of the OCPI tests: the whole CPMS on a known port (so its public URL is known before
it starts), and eMSPs played by tests/ocpi/emsp.py."""
from __future__ import annotations

import contextlib
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from services.catalogue import SERVICES
from services.gateway.app import create_gateway_app
from shared import db
from shared.app import create_app
from shared.config import Settings
from tests.conftest import PG_URL, delete_broker_objects
from tests.ocpi.emsp import Emsp
from tests.support import Api, free_port

COUNTRY_CODE, PARTY_ID = "NL", "CPM"


@dataclass
class Cpo:
    """The CPMS under test: `api` for its /v1 routes, `url` its base as partners see it."""

    api: Api
    url: str
    settings: Settings
    charger_url: str = ""  # its own gateway's OCPP 1.6J WebSocket base, when it has one

    async def create_partner(self, name: str | None = None) -> dict:
        status, body = await self.api.admin("POST", "/v1/ocpi/partners", {"name": name or f"partner-{uuid.uuid4().hex[:8]}"})
        assert status == 201, body
        return body

    async def partner(self, partner_id: str) -> dict:
        status, body = await self.api.admin("GET", "/v1/ocpi/partners?limit=500")
        assert status == 200, body
        return next(p for p in body["items"] if p["partnerId"] == partner_id)

    async def registered_emsp(self, emsp: Emsp) -> dict:
        """A partner registered by `emsp` (the eMSP starts the handshake)."""
        created = await self.create_partner()
        status, answer = await emsp.register_with(created["versionsUrl"], created["tokenA"])
        assert status == 200 and answer["status_code"] == 1000, answer
        return created


@contextlib.asynccontextmanager
async def running_cpo(make_settings, run_id: str, name: str, *, own_gateway: bool = False, **overrides) -> AsyncIterator[Cpo]:
    """The whole CPMS (`cpms run all` wiring) with its own database and broker prefix, its OCPI
    identity NL/CPM, pushing at once (short retry delays); with `own_gateway`, its commands go to
    its own gateway (`cpo.charger_url`, bound first so each knows the other's address)."""
    url = f"{PG_URL}/cpms_test_{run_id}_{name}"
    await db.ensure_database(url)
    port = free_port()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    gateway_port = listener.getsockname()[1]
    if own_gateway:
        overrides["gateway_base_url"] = f"http://127.0.0.1:{gateway_port}"
    settings = make_settings(
        database_url=url, prefix_suffix=f"{name}-", ocpi_public_url=f"http://127.0.0.1:{port}",
        ocpi_country_code=COUNTRY_CODE, ocpi_party_id=PARTY_ID, ocpi_push_poll_seconds=0.2,
        ocpi_push_retry_first_seconds=0.2, ocpi_push_retry_max_seconds=1.0, ocpi_push_timeout_seconds=5,
        # partners' sessions: progress at every meter reading, a PATCH at most every half second, a CDR after 1 s of calm
        session_progress_seconds=0, ocpi_session_patch_seconds=0.5, ocpi_cdr_delay_seconds=1, **overrides,
    )
    client = TestClient(TestServer(create_app(settings, list(SERVICES.values())), port=port))
    await client.start_server()
    runner = None
    if own_gateway:
        runner = web.AppRunner(create_gateway_app(settings, base_url=f"http://127.0.0.1:{port}"))
        await runner.setup()
        await web.SockSite(runner, listener).start()
    else:
        listener.close()
    cpo = Cpo(Api(client, database_url=url), f"http://127.0.0.1:{port}", settings, f"ws://127.0.0.1:{gateway_port}/ocpp16")
    try:
        yield cpo
        status, body = await cpo.api.admin("GET", "/v1/ocpi/partners?limit=500")
        left = [p["name"] for p in body["items"] if p["status"] == "REGISTERED"] if status == 200 else body
    finally:
        if runner is not None:
            await runner.cleanup()
        await client.close()
        await delete_broker_objects(settings.amqp_prefix)
        await db.drop_database(url)
    assert left == [], f"partners left registered by their tests: {left}"


@pytest.fixture(scope="session")
async def cpo(make_settings, run_id: str) -> AsyncIterator[Cpo]:
    async with running_cpo(make_settings, run_id, "ocpi") as cpo:
        yield cpo


@pytest.fixture
async def emsp(cpo: Cpo) -> AsyncIterator[Emsp]:
    """An eMSP, unregistered from the CPMS at the end of its test when it registered, so the
    session's CPMS does not gather partners (each asked of an unknown idTag, each pushed to)."""
    partner = Emsp()
    await partner.start()
    try:
        yield partner
    finally:
        try:
            await partner.unregister()
        finally:
            await partner.close()
