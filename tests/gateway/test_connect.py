"""Connecting a charger (CONTRACT section 11): both paths, the ocpp1.6 subprotocol, the secret as
Basic password or ?secret= checked by ingest, refusals with ingest's status, and one connection
per charger (a new one replaces the old)."""
from __future__ import annotations

import asyncio

import aiohttp
import pytest
import websockets
from ocpp.v16 import call

from tests.gateway.conftest import Charger, basic, connected
from tests.support import eventually


async def _charger(api, cp: str) -> dict:
    _, body = await api.admin("GET", f"/v1/chargers/{cp}")
    return body


async def test_a_charger_connects_boots_and_reports_on_both_paths(api, gateway, registered):
    for path in ("ocpp16", "ocpp"):
        cp, secret = await registered()
        async with connected(gateway, cp, secret, path=path) as charger:
            assert charger._connection.subprotocol == "ocpp1.6"
            # it offered permessage-deflate (the websockets library does): declined, frames go as they are
            assert "Sec-WebSocket-Extensions" not in charger._connection.response.headers
            boot = await charger.boot()
            assert (boot.status, boot.interval) == ("Accepted", 300)
            assert boot.current_time.endswith("Z") and "." in boot.current_time  # the gateway's clock, milliseconds
            beat = await charger.call(call.Heartbeat())
            assert beat.current_time.endswith("Z")
            await charger.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Preparing",
                                                       timestamp="2026-11-25T10:00:00.250+01:00"))

            async def shown():
                body = await _charger(api, cp)
                _, connectors = await api.admin("GET", f"/v1/chargers/{cp}/connectors")
                statuses = [(c["connectorId"], c["status"]) for c in connectors["items"]]
                return body if body["vendor"] == "Alfen" and statuses == [(1, "Preparing")] else None

            charger_view = await eventually(shown)
            assert (charger_view["model"], charger_view["firmwareVersion"], charger_view["ocppVersion"]) == ("Eve Single", "6.1.2", "1.6")
            assert charger_view["lastHeartbeatAt"] is not None


async def test_the_secret_may_come_as_a_query_parameter_and_no_subprotocol_is_served_as_16(gateway, registered):
    cp, secret = await registered()
    async with websockets.connect(gateway.ws_url(cp) + f"?secret={secret}") as socket:
        assert socket.subprotocol is None
        charger = Charger(cp, socket)
        serving = asyncio.create_task(charger.start())
        assert (await charger.boot()).status == "Accepted"
        serving.cancel()


async def test_refusals_wrong_secret_unknown_charger_and_foreign_subprotocol(gateway, registered):
    cp, secret = await registered()
    refusals = [
        (gateway.ws_url(cp), {"subprotocols": ["ocpp1.6"], "additional_headers": basic(cp, "not-the-secret")}, 401),
        (gateway.ws_url("CP-never-registered"), {"additional_headers": basic("CP-never-registered", secret)}, 401),
        (gateway.ws_url(cp), {"subprotocols": ["ocpp1.6"]}, 401),  # no secret at all
        (gateway.ws_url(cp), {"subprotocols": ["ocpp2.0.1"], "additional_headers": basic(cp, secret)}, 400),
        (gateway.ws_url(cp), {"additional_headers": basic("another-user", secret)}, 401),  # user must be the charger id
    ]
    for url, options, status in refusals:
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(url, **options):
                pass
        assert refused.value.response.status_code == status, (url, options)


async def test_repeated_wrong_secrets_are_throttled_with_retry_after(gateway, registered):
    cp, _ = await registered()
    statuses = []
    for _ in range(7):
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(gateway.ws_url(cp), additional_headers=basic(cp, "wrong-secret-guess")):
                pass
        statuses.append(refused.value.response.status_code)
    assert statuses[0] == 401 and statuses[-1] == 429
    assert refused.value.response.headers["Retry-After"]


async def test_a_second_connection_replaces_the_first(api, gateway, registered):
    cp, secret = await registered()
    async with connected(gateway, cp, secret) as first:
        await first.boot()
        async with connected(gateway, cp, secret) as second:
            await first._connection.wait_closed()
            assert first._connection.close_code == 1000
            assert (await second.call(call.Heartbeat())).current_time
            status, body = await gateway_status(gateway)
            assert status == 200 and body["connectedChargers"] == 1


async def gateway_status(gateway) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{gateway.http_url}/readyz") as answer:
            return answer.status, await answer.json()


async def test_metrics_count_the_connected_chargers(gateway, registered):
    cp, secret = await registered()
    before = await connected_chargers_metric(gateway)
    async with connected(gateway, cp, secret) as charger:
        await charger.boot()
        assert await connected_chargers_metric(gateway) == before + 1
    assert await eventually(lambda: _at(gateway, before))


async def _at(gateway, value: float) -> bool:
    return await connected_chargers_metric(gateway) == value


async def connected_chargers_metric(gateway) -> float:
    """`cpms_gateway_connected_chargers` as the gateway's /metrics shows it."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{gateway.http_url}/metrics") as answer:
            assert answer.status == 200, await answer.text()
            text = await answer.text()
    return next(float(line.split()[1]) for line in text.splitlines() if line.startswith("cpms_gateway_connected_chargers "))

