"""Billing fixtures: `billing` drives the service through its HTTP API and plays the sessions
service by publishing `session.finalized` to the real broker; `domain_tap` records what billing
publishes on the domain exchange."""
from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import aio_pika
import pytest

from shared.broker import Broker
from shared.config import Settings
from shared.consumer import decode
from shared.jsonutil import dumps, format_ts
from tests.support import Api, eventually, unique_id


class DomainTap:
    """A private queue bound to everything billing publishes."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict]] = []

    def of(self, routing_key_prefix: str, **fields: Any) -> list[dict]:
        return [body for key, body in self.messages
                if key.startswith(routing_key_prefix) and all(body.get(k) == v for k, v in fields.items())]

    async def wait_for(self, routing_key_prefix: str, **fields: Any) -> list[dict]:
        async def probe() -> list[dict]:
            return self.of(routing_key_prefix, **fields)
        return await eventually(probe)


@pytest.fixture(scope="session")
async def domain_tap(settings: Settings, api: Api) -> AsyncIterator[DomainTap]:
    tap = DomainTap()
    connection = await aio_pika.connect_robust(settings.amqp_url)
    channel = await connection.channel()
    queue = await channel.declare_queue(f"{settings.amqp_prefix}.test-billing-tap-{uuid.uuid4().hex[:6]}", exclusive=True, auto_delete=True)
    for key in ("session.priced", "settlement.*", "charger.site-assigned"):
        await queue.bind(f"{settings.amqp_prefix}.domain", routing_key=key)

    async def record(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with message.process():
            tap.messages.extend((m.routing_key, m.body) for m in decode(message))

    await queue.consume(record)
    yield tap
    await connection.close()


@pytest.fixture(scope="session")
async def session_publisher(settings: Settings) -> AsyncIterator[Broker]:
    broker = Broker(settings.amqp_url, settings.amqp_prefix, publish_timeout=5)
    await broker.connect()
    yield broker
    await broker.close()


class Billing:
    """The billing API plus a stand-in for the sessions service's `session.finalized` messages."""

    def __init__(self, api: Api, publisher: Broker, pg) -> None:
        self.api, self.publisher, self.pg = api, publisher, pg

    async def site(self, name: str = "Depot", wallet: str | None = None) -> dict:
        status, site = await self.api.admin("POST", "/v1/sites", {"name": name})
        assert status == 201, site
        if wallet is not None:
            status, site = await self.api.admin("POST", f"/v1/sites/{site['siteId']}/wallet", {"wallet": wallet})
            assert status == 200, site
        return site

    async def tariff(self, site_id: str, price: Any, currency: str | None = "USD") -> dict:
        body = {"pricePerKwh": price} if currency is None else {"pricePerKwh": price, "currency": currency}
        status, tariff = await self.api.admin("POST", f"/v1/sites/{site_id}/tariffs", body)
        assert status == 201, tariff
        return tariff

    async def charger_at(self, site_id: str) -> str:
        cp = unique_id()
        status, body = await self.api.admin("PUT", f"/v1/chargers/{cp}/site", {"siteId": site_id})
        assert status == 200, body
        return cp

    async def priced_site(self, price: Any = "0.30", currency: str = "USD", wallet: str | None = "rWALLET1") -> tuple[dict, dict, str]:
        """A site with a wallet and a tariff, and a charger assigned to it."""
        site = await self.site(wallet=wallet)
        tariff = await self.tariff(site["siteId"], price, currency)
        return site, tariff, await self.charger_at(site["siteId"])

    async def finalize(
        self, cp: str, *, energy_wh: Any, started_at: datetime | str | None, revision: int = 1,
        session_id: str | None = None, message_id: str | None = None, source: str | None = None,
    ) -> str:
        """Publish a `session.finalized` as the sessions service would; returns the session id."""
        session_id = session_id or str(uuid.uuid4())
        started = format_ts(started_at) if isinstance(started_at, datetime) else started_at
        body = {
            "sessionId": session_id, "chargePointId": cp, "connectorId": 1, "transactionId": 7,
            "startedAt": started, "endedAt": started,
            "energyWh": None if energy_wh is None else str(energy_wh),
            "energySource": source or ("Missing" if energy_wh is None else "StopTransaction"),
            "isEstimated": energy_wh is None, "finalizedAt": "2026-11-25T12:00:00Z", "revision": revision,
        }
        await self.publisher.publish("domain", "session.finalized", dumps(body), message_id=message_id or str(uuid.uuid4()))
        return session_id

    async def settlement_of(self, session_id: str) -> dict | None:
        status, body = await self.api.admin("GET", f"/v1/settlements?sessionId={session_id}")
        assert status == 200, body
        assert len(body["items"]) <= 1
        return body["items"][0] if body["items"] else None

    async def wait_settlement(self, session_id: str, **expected: Any) -> dict:
        async def probe():
            settlement = await self.settlement_of(session_id)
            return settlement if settlement and all(settlement[k] == v for k, v in expected.items()) else None
        return await eventually(probe)

    async def wait_applied(self, session_id: str, revision: int = 1) -> None:
        """Wait until billing applied this revision of the session (the API does not show unpriced sessions)."""
        async def probe():
            return await self.pg.fetchval(
                "SELECT revision >= $2 FROM billing.session_prices WHERE session_id = $1", uuid.UUID(session_id), revision,
            )
        await eventually(probe)

    async def transition(self, settlement_id: str, action: str, body: dict | None = None) -> tuple[int, Any]:
        return await self.api.admin("POST", f"/v1/settlements/{settlement_id}/{action}", body)


def after(tariff: dict, seconds: float = 1.0) -> datetime:
    return datetime.fromisoformat(tariff["createdAt"]) + timedelta(seconds=seconds)


@pytest.fixture
async def billing(api: Api, session_publisher: Broker, pg) -> Billing:
    return Billing(api, session_publisher, pg)
