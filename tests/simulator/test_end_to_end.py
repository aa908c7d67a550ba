"""The README's first walkthrough, for real: the CPMS (`cpms run all` wiring) with its own OCPP
1.6J gateway, and `cpms simulate --register` as a user runs it. The simulated chargers' sessions
are priced and settled, and commands sent through the commands service reach a simulated charger
over its WebSocket and are answered and acted on."""
from __future__ import annotations

import asyncio
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from services.gateway.app import create_gateway_app
from shared.app import SETTINGS
from tests.support import ADMIN_TOKEN, Api, eventually, unique_id

ROOT = Path(__file__).resolve().parents[2]
SECRET = "simulated-secret-1"


def base_url(api: Api) -> str:
    return str(api.client.make_url("")).rstrip("/")


@pytest.fixture
async def cpms_with_gateway(make_api) -> AsyncIterator[tuple[Api, int]]:
    """A CPMS of its own whose commands go to its own gateway, and that gateway's port. The
    gateway's socket is bound first, so each side knows the other's address."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    api = await make_api(gateway_base_url=f"http://127.0.0.1:{port}")
    gateway = create_gateway_app(api.client.server.app[SETTINGS], base_url=base_url(api))
    runner = web.AppRunner(gateway)
    await runner.setup()
    await web.SockSite(runner, listener).start()
    yield api, port
    await runner.cleanup()


async def command(api: Api, cp: str, type_: str, payload: dict) -> dict:
    body = {"type": type_, "chargePointId": cp, "idempotencyKey": unique_id("key"), "payload": payload}
    status, done = await api.admin("POST", "/v1/commands?wait=20", body)
    assert status == 200 and done["status"] == "Acked", done
    return done


async def sessions_of(api: Api, cp: str) -> list[dict]:
    status, page = await api.admin("GET", f"/v1/chargers/{cp}/sessions")
    assert status in (200, 404), page  # 404 until the simulator has registered it
    return page["items"] if status == 200 else []


async def test_simulated_chargers_charge_are_priced_settled_and_answer_commands(cpms_with_gateway):
    api, port = cpms_with_gateway
    _, site = await api.admin("POST", "/v1/sites", {"name": "Simulated depot"})
    assert (await api.admin("POST", f"/v1/sites/{site['siteId']}/tariffs", {"pricePerKwh": "0.30", "currency": "USD"}))[0] == 201
    assert (await api.admin("POST", f"/v1/sites/{site['siteId']}/wallet", {"wallet": "rSimulatedWallet1"}))[0] == 200
    prefix = unique_id("SIM")[:16] + "-"
    first, second = f"{prefix}001", f"{prefix}002"

    simulator = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", "simulate", "--url", f"ws://127.0.0.1:{port}/ocpp16", "--chargers", "2",
        "--sessions", "1", "--prefix", prefix, "--secret", SECRET, "--energy-wh", "5000", "--meter-interval", "0.3",
        "--register", "--api", base_url(api), "--admin-token", ADMIN_TOKEN, "--site", site["siteId"], "--linger", "inf",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        async def priced() -> list[dict] | None:
            done = [s for cp in (first, second) for s in await sessions_of(api, cp) if s["costAmount"] is not None]
            return done if len(done) == 2 else None

        # 5000 Wh at 0.30 USD/kWh, as each charger's StopTransaction said
        for session in await eventually(priced, timeout=90):
            assert (session["status"], session["meterStopWh"] - session["meterStartWh"], session["energyWh"]) == (
                "Finalized", 5000, 5000), session
            assert (session["idTag"], session["reason"], session["costAmount"], session["costCurrency"]) == (
                "SIMULATOR", "EVDisconnected", "1.50", "USD")

        session = (await sessions_of(api, first))[0]

        async def settlement() -> dict | None:
            _, page = await api.admin("GET", f"/v1/settlements?sessionId={session['sessionId']}")
            return page["items"][0] if page["items"] else None

        settled = await eventually(settlement)
        assert (settled["amount"], settled["currency"], settled["status"], settled["wallet"]) == ("1.50", "USD", "Pending", "rSimulatedWallet1")
        status, submitted = await api.admin("POST", f"/v1/settlements/{settled['settlementId']}/submitted",
                                            {"chain": "XRPL", "txHash": "AB" * 32})
        assert status == 200 and submitted["status"] == "Submitted"

        # Commands through the commands service, the gateway and the charger's WebSocket.
        config = await command(api, first, "GetConfiguration", {"key": ["ChargingScheduleAllowedChargingRateUnit", "NoSuchKey"]})
        assert config["response"] == {"configurationKey": [{"key": "ChargingScheduleAllowedChargingRateUnit", "readonly": True,
                                                            "value": "Power"}], "unknownKey": ["NoSuchKey"]}
        started = await command(api, first, "RemoteStartTransaction", {"idTag": "REMOTE-TAG", "connectorId": 2})
        assert started["response"] == {"status": "Accepted"}

        async def remote_session() -> dict | None:
            active = [s for s in await sessions_of(api, first) if s["idTag"] == "REMOTE-TAG"]
            return active[0] if active else None

        remote = await eventually(remote_session)
        assert remote["connectorId"] == 2
        limited = await command(api, first, "SetChargingProfile", {"connectorId": 2, "csChargingProfiles": {
            "chargingProfileId": 1, "transactionId": remote["transactionId"], "stackLevel": 0, "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Relative",
            "chargingSchedule": {"chargingRateUnit": "W", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 3700.0}]}}})
        assert limited["response"] == {"status": "Accepted"}
        schedule = await command(api, first, "GetCompositeSchedule", {"connectorId": 2, "duration": 600, "chargingRateUnit": "W"})
        assert schedule["response"]["chargingSchedule"]["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 3700.0}]
        stopped = await command(api, first, "RemoteStopTransaction", {"transactionId": remote["transactionId"]})
        assert stopped["response"] == {"status": "Accepted"}

        async def remote_ended() -> dict | None:
            current = await remote_session()
            return current if current["status"] == "Finalized" else None

        ended = await eventually(remote_ended)
        assert ended["reason"] == "Remote" and ended["meterStartWh"] == 0 and ended["energyWh"] >= 0
        unknown = await command(api, second, "RemoteStopTransaction", {"transactionId": remote["transactionId"]})
        assert unknown["response"] == {"status": "Rejected"}  # not that charger's transaction
    finally:
        if simulator.returncode is None:
            simulator.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(simulator.communicate(), timeout=60)
    text = out.decode()
    assert simulator.returncode == 0, (text, err.decode())
    assert "registered: 2 created, 0 given the secret again" in text
    assert "chargers: 2 connected, 0 refused at the handshake, 0 failed" in text
    assert "sessions: 3 started, 3 stopped, 0 refused" in text
    assert "commands answered: 6 (0 with a CallError)" in text
    assert "GetConfiguration 1" in text and "RemoteStartTransaction 1" in text and "RemoteStopTransaction 2" in text


async def test_unregistered_chargers_are_refused_at_the_handshake(cpms_with_gateway):
    api, port = cpms_with_gateway
    simulator = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", "simulate", "--url", f"ws://127.0.0.1:{port}/ocpp16", "--chargers", "2",
        "--prefix", unique_id("NOBODY")[:16] + "-", "--secret", SECRET,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(simulator.communicate(), timeout=60)
    assert simulator.returncode == 1
    assert "chargers: 0 connected, 2 refused at the handshake, 0 failed" in out.decode()
    assert "HTTP 401" in err.decode()
