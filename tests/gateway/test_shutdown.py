"""Graceful shutdown (CONTRACT section 11): every WebSocket closes with 1001 (going away) after
the calls in flight are answered, so chargers reconnect to another process and lose nothing.
Stopping the test server runs the same shutdown as SIGTERM does under `cpms run`."""
from __future__ import annotations

import asyncio

from ocpp.v16 import call
from tests.gateway.conftest import connected
from tests.gateway.test_calls import charger_time
from tests.support import eventually


async def test_shutdown_answers_the_call_in_flight_then_closes_with_1001(make_gateway, registered, ingest_proxy, pg):
    cp, secret = await registered()
    gateway = await make_gateway(base_url=f"http://127.0.0.1:{ingest_proxy.port}")
    async with connected(gateway, cp, secret) as charger:
        await charger.boot()
        ingest_proxy.freeze()  # ingest is slow: the next call is in flight when the shutdown begins
        in_flight = asyncio.create_task(charger.call(call.StatusNotification(
            connector_id=1, error_code="NoError", status="Available", timestamp=charger_time()), suppress=False))
        await asyncio.sleep(0.3)
        stopping = asyncio.create_task(gateway.server.close())
        await asyncio.sleep(0.3)
        assert not in_flight.done()
        ingest_proxy.thaw()
        await in_flight  # answered (a CallResult), not cut off
        await charger._connection.wait_closed()
        assert charger._connection.close_code == 1001
        await stopping

    async def disconnected():
        rows = await pg.fetch("SELECT body->>'reason' AS reason FROM ingest.events "
                              "WHERE charge_point_id = $1 AND type = 'ChargerDisconnected'", cp)
        return [r["reason"] for r in rows]

    assert await eventually(disconnected) == ["GoingAway"]  # told before the process went
