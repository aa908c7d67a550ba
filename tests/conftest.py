"""Fixtures: each test session gets its own database and its own broker prefix, and one running
CPMS (`cpms run all` wiring) against the real Postgres and RabbitMQ."""
from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import aio_pika
import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.catalogue import SERVICES
from shared import db
from shared.app import create_app
from shared.config import Settings
from shared.topology import delete_topology
from tests.support import ADMIN_TOKEN, GATEWAY_KEY, Api, FakeGateway

PG_URL = os.environ.get("CPMS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432")
AMQP_URL = os.environ.get("CPMS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


@pytest.fixture(scope="session")
def run_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
async def database_url(run_id: str) -> AsyncIterator[str]:
    url = f"{PG_URL}/cpms_test_{run_id}"
    await db.ensure_database(url)
    yield url
    await db.drop_database(url)


async def delete_broker_objects(prefix: str) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        await delete_topology(await connection.channel(), prefix)


@pytest.fixture(scope="session")
async def fake_gateway() -> AsyncIterator[FakeGateway]:
    gateway = FakeGateway()
    await gateway.start()
    yield gateway
    await gateway.close()


@pytest.fixture(scope="session")
def make_settings(database_url: str, fake_gateway: FakeGateway):
    """Settings for this test session; keyword overrides by field name."""

    def make(**overrides) -> Settings:
        values = {
            "database_url": database_url,
            "amqp_url": AMQP_URL,
            "amqp_prefix": f"test-{overrides.pop('prefix_suffix', '')}{database_url.rsplit('_', 1)[-1]}",
            "api_key": GATEWAY_KEY,
            "admin_token": ADMIN_TOKEN,
            "gateway_base_url": fake_gateway.url,
            "log_level": "WARNING",
            "outbox_poll_seconds": 0.2,
        }
        values.update(overrides)
        return Settings.from_env({}, **values)

    return make


@pytest.fixture(scope="session")
async def settings(make_settings) -> AsyncIterator[Settings]:
    settings = make_settings()
    yield settings
    await delete_broker_objects(settings.amqp_prefix)


@pytest.fixture(scope="session")
async def api(settings: Settings) -> AsyncIterator[Api]:
    """The whole CPMS in one process, as `cpms run all` wires it."""
    client = TestClient(TestServer(create_app(settings, list(SERVICES.values()))))
    await client.start_server()
    yield Api(client, database_url=settings.database_url)
    await client.close()


@pytest.fixture
async def make_api(make_settings, run_id: str) -> AsyncIterator:
    """Start another CPMS with its own settings: its own database and broker prefix unless given,
    so its background work (outbox relays, the command sweep) never meets another app's rows.
    Closed, and its database dropped, after the test."""
    started: list[tuple[TestClient, Settings]] = []
    databases: list[str] = []  # their URLs

    async def make(services: list[str] | None = None, port: int | None = None, **overrides) -> Api:
        suffix = uuid.uuid4().hex[:6]
        overrides.setdefault("prefix_suffix", suffix + "-")
        if "database_url" not in overrides:
            overrides["database_url"] = f"{PG_URL}/cpms_test_{run_id}_{suffix}"
            databases.append(overrides["database_url"])
            await db.ensure_database(overrides["database_url"])
        settings = make_settings(**overrides)
        specs = [SERVICES[name] for name in services] if services else list(SERVICES.values())
        client = TestClient(TestServer(create_app(settings, specs), port=port))
        await client.start_server()
        started.append((client, settings))
        return Api(client, database_url=settings.database_url)

    yield make
    for client, settings in started:
        await client.close()
        await delete_broker_objects(settings.amqp_prefix)
    for url in databases:
        await db.drop_database(url)


@pytest.fixture
async def connect_db() -> AsyncIterator:
    """`await connect_db(api)`: a direct connection to that app's database, closed after the test."""
    opened: list[asyncpg.Connection] = []

    async def connect(api: Api) -> asyncpg.Connection:
        opened.append(await db.connect(api.database_url))
        return opened[-1]

    yield connect
    for conn in opened:
        await conn.close()


@pytest.fixture
async def pg(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection to the test database, for checks a user cannot make through the API."""
    conn = await db.connect(database_url)
    yield conn
    await conn.close()
