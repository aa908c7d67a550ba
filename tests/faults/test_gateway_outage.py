"""The gateway down while commands wait for delivery (CONTRACT section 5): down for longer than a
command's time to live, the command is Failed and never sent later; down for less, it is sent once
the gateway is back and Acked, the refused attempts never having reached anybody."""
from __future__ import annotations

import socket
from dataclasses import dataclass

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.commands.helpers import create, gateway_body, outcome, remote_start
from tests.support import FakeGateway, eventually

pytestmark = pytest.mark.faults


@dataclass
class GatewayAt(FakeGateway):
    """A fake gateway on a port chosen before it runs, so the CPMS can be pointed at it while it is down."""

    port: int = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/gateway/commands", self._commands)
        self.server = TestServer(app, host="127.0.0.1", port=self.port)
        await self.server.start_server()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def _attempted(api, command_id: str, times: int) -> dict | None:
    status, body = await api.admin("GET", f"/v1/commands/{command_id}")
    assert status == 200, body
    return body if body["attempts"] >= times else None


async def test_gateway_down_longer_than_the_time_to_live_fails_the_command_for_good(make_api):
    gateway = GatewayAt(port=_free_port())
    api = await make_api(services=["commands"], command_ttl_seconds=3, gateway_base_url=f"http://127.0.0.1:{gateway.port}")
    expired = [remote_start() for _ in range(3)]
    created = [await create(api, body) for body in expired]
    try:
        for command in created:
            done = await outcome(api, command["commandId"])
            assert done["status"] == "Failed" and done["attempts"] >= 1, done
            assert "time to live" in done["error"] and "unreachable" in done["error"], done
        await gateway.start()  # the gateway is back
        later = remote_start()
        acked = await outcome(api, (await create(api, later))["commandId"])
        assert acked["status"] == "Acked" and gateway.calls_for(later["idempotencyKey"]) == [gateway_body(later)]
        for body, command in zip(expired, created, strict=True):
            status, again = await api.admin("GET", f"/v1/commands/{command['commandId']}")
            assert (status, again["status"]) == (200, "Failed")  # Failed is final
            assert gateway.calls_for(body["idempotencyKey"]) == []  # never sent after its time ran out
    finally:
        await gateway.close()


async def test_gateway_down_shorter_than_the_time_to_live_delivers_once_when_it_is_back(make_api):
    gateway = GatewayAt(port=_free_port())
    api = await make_api(services=["commands"], command_ttl_seconds=60, gateway_base_url=f"http://127.0.0.1:{gateway.port}")
    bodies = [remote_start() for _ in range(3)]
    created = [await create(api, body) for body in bodies]
    try:
        for command in created:
            waiting = await eventually(lambda c=command: _attempted(api, c["commandId"], 2), timeout=30)
            assert waiting["status"] in ("Queued", "Sent"), waiting  # retried, not given up
        await gateway.start()
        for body, command in zip(bodies, created, strict=True):
            done = await outcome(api, command["commandId"], timeout=40)
            assert (done["status"], done["response"]) == ("Acked", {"status": "Accepted"}), done
            assert done["attempts"] >= 3 and done["error"] is None, done
            assert gateway.calls_for(body["idempotencyKey"]) == [gateway_body(body)]  # delivered exactly once
    finally:
        await gateway.close()
