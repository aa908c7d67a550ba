"""RabbitMQ stopped for 10 s while chargers are sending: ingest keeps answering 202 (the events go
to its spool, committed in Postgres), readiness stays 200 naming the broker as degraded, and once
the broker is back the spool relay publishes everything: every event applied exactly once.

The reference gateway drops any event that does not get a 2xx, so a 503 here would be a lost kWh:
the test counts them, and there must be none."""
from __future__ import annotations

import asyncio

import pytest

from tests.faults import outages
from tests.faults.load import Load, verify_exactly_once
from tests.support import eventually

pytestmark = pytest.mark.faults


async def _degraded(api):
    status, body = await api.anonymous("GET", "/readyz")
    return body if status == 200 and "broker" in body.get("degraded", []) else None


async def test_rabbitmq_stopped_10s_under_load_answers_no_503_and_loses_nothing(api, settings, pg):
    load = Load(chargers=40)
    await load.prepare(api)
    spooled_before = await pg.fetchval("SELECT count(*) FROM ingest.spool")
    async with outages.under_load(api, load):
        try:
            await outages.rabbitmq("stop_app")
            body = await eventually(lambda: _degraded(api), timeout=30)
            assert body["checks"]["broker"] == "failing" and body["checks"]["database"] == "ok"
            accepted_at_stop = len(load.outcome.accepted)
            await asyncio.sleep(10)
            held = await pg.fetchval("SELECT count(*) FROM ingest.spool")
            accepted_while_down = len(load.outcome.accepted) - accepted_at_stop
            assert accepted_while_down > 0 and held > spooled_before, (accepted_while_down, held)
        finally:
            await outages.rabbitmq("start_app")
            await outages.broker_answers(settings.amqp_url)

    await eventually(lambda: pg.fetchval("SELECT count(*) = 0 FROM ingest.spool"), timeout=60)
    figures = await verify_exactly_once(api, pg, load)
    assert figures["statuses"].get(503, 0) == 0, figures["statuses"]
    print(f"broker outage (10 s): {accepted_while_down} events accepted while the broker was down, "
          f"{held} held in the spool at once, 503s: {figures['statuses'].get(503, 0)}; {figures}")
