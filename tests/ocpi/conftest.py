"""Fixtures of the OCPI tests: the whole CPMS on a known port (so its public URL is known before
it starts), and eMSPs played by tests/ocpi/emsp.py."""
from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.catalogue import SERVICES
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


@pytest.fixture(scope="session")
async def cpo(make_settings, run_id: str) -> AsyncIterator[Cpo]:
    """The whole CPMS (`cpms run all` wiring) with its own database and broker prefix, its OCPI
    identity NL/CPM, pushing at once (short retry delays)."""
    url = f"{PG_URL}/cpms_test_{run_id}_ocpi"
    await db.ensure_database(url)
    port = free_port()
    settings = make_settings(
        database_url=url, prefix_suffix="ocpi-", ocpi_public_url=f"http://127.0.0.1:{port}",
        ocpi_country_code=COUNTRY_CODE, ocpi_party_id=PARTY_ID, ocpi_push_poll_seconds=0.2,
        ocpi_push_retry_first_seconds=0.2, ocpi_push_retry_max_seconds=1.0, ocpi_push_timeout_seconds=5,
        # partners' sessions: progress at every meter reading, a PATCH at most every half second, a CDR after 1 s of calm
        session_progress_seconds=0, ocpi_session_patch_seconds=0.5, ocpi_cdr_delay_seconds=1,
    )
    client = TestClient(TestServer(create_app(settings, list(SERVICES.values())), port=port))
    await client.start_server()
    cpo = Cpo(Api(client, database_url=url), f"http://127.0.0.1:{port}", settings)
    yield cpo
    status, body = await cpo.api.admin("GET", "/v1/ocpi/partners?limit=500")
    left = [p["name"] for p in body["items"] if p["status"] == "REGISTERED"] if status == 200 else body
    await client.close()
    await delete_broker_objects(settings.amqp_prefix)
    await db.drop_database(url)
    assert left == [], f"partners left registered by their tests: {left}"


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
