"""RabbitMQ stopped and started while chargers are sending: ingest refuses with 503 while it
cannot get a confirm (never a 202 that is then lost), readiness follows the broker, and every
accepted event is applied exactly once after the broker is back."""
from __future__ import annotations

import pytest

from tests.faults import outages
from tests.faults.load import Load, verify_exactly_once
from tests.ingest import gateway_events as ev
from tests.support import eventually, unique_id

pytestmark = pytest.mark.faults


async def test_rabbitmq_stopped_and_started_mid_load_loses_nothing(api, settings, pg):
    load = Load(chargers=40)
    await load.prepare(api)
    async with outages.under_load(api, load):
        try:
            await outages.rabbitmq("stop_app")
            down = await eventually(lambda: outages.readiness(api, 503), timeout=30)
            assert "broker" in down["failing"]
            status, body = await api.gateway("POST", "/v1/gateway/events", ev.heartbeat(unique_id()))
            assert status == 503 and api.last_response.headers["Retry-After"], body
            await eventually(lambda: outages.at_least(load.outcome.statuses[503], 8))  # the chargers were refused too
            accepted_while_down = len(load.outcome.accepted)
        finally:
            await outages.rabbitmq("start_app")
            await outages.broker_answers(settings.amqp_url)

    figures = await verify_exactly_once(api, pg, load)
    assert figures["statuses"][503] >= 8 and len(load.outcome.accepted) > accepted_while_down
    print(f"broker outage: {figures}")

