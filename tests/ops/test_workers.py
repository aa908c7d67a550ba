"""`cpms run all` with CPMS_WORKERS=2, as real processes: a consumers worker and an HTTP worker
under one parent. The HTTP worker takes the gateway's events and the consumers worker applies
them; /metrics answers for both; a worker that dies is started again; SIGTERM stops them all; a
dependency that refuses the workers stops the parent with exit code 2."""
from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid

import aiohttp

from shared import db
from tests.conftest import PG_URL, delete_broker_objects
from tests.ops.test_startup import _free_port, _run_until_exit
from tests.support import eventually, unique_id

ADMIN, GATEWAY = "workers-admin-token", "workers-gateway-key"


def _workers_of(parent: int) -> dict[str, int]:
    """role -> pid of the parent's live workers."""
    try:
        with open(f"/proc/{parent}/task/{parent}/children") as f:
            children = [int(pid) for pid in f.read().split()]
    except OSError:
        return {}
    found = {}
    for pid in children:
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ = dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)
        except OSError:
            continue
        found[environ.get(b"CPMS_WORKER_ROLE", b"?").decode()] = pid
    return found


async def test_two_workers_share_the_work_and_the_parent_keeps_them_running():
    name = f"cpms_workers_{uuid.uuid4().hex[:8]}"
    prefix = f"workers-{uuid.uuid4().hex[:6]}"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "CPMS_DATABASE_URL": f"{PG_URL}/{name}", "CPMS_AMQP_PREFIX": prefix,
           "CPMS_LISTEN_ADDR": f"127.0.0.1:{port}", "CPMS_WORKERS": "2", "CPMS_ADMIN_TOKEN": ADMIN, "CPMS_API_KEY": GATEWAY,
           "CPMS_LOG_LEVEL": "WARNING"}
    parent = await asyncio.create_subprocess_exec(sys.executable, "-m", "services.cli", "run", "all", env=env,
                                                  stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    admin = {"Authorization": f"Bearer {ADMIN}"}
    gateway = {"Authorization": f"Bearer {GATEWAY}"}
    try:
        async with aiohttp.ClientSession() as http:
            async def ready() -> bool:
                try:
                    async with http.get(f"{base}/readyz") as r:
                        return r.status == 200
                except aiohttp.ClientError:
                    return False

            await eventually(ready, timeout=60)
            roles = _workers_of(parent.pid)
            assert set(roles) == {"consumers", "http"}, roles

            cp = unique_id()
            async with http.post(f"{base}/v1/chargers", json={"chargePointId": cp, "secret": "worker-secret"}, headers=admin) as r:
                assert r.status == 201, await r.text()
            for _ in range(2):  # verified, then remembered
                async with http.post(f"{base}/v1/gateway/chargers/{cp}/auth", json={"presentedSecret": "worker-secret"},
                                     headers=gateway) as r:
                    assert r.status == 200

            async def send_status(status: str) -> None:
                event = {"type": "ConnectorStatusChanged", "chargePointId": cp, "connectorId": 1, "status": status,
                         "errorCode": "NoError"}
                async with http.post(f"{base}/v1/gateway/events", json=event, headers=gateway) as r:
                    assert r.status == 202, await r.text()

            def shows(status: str):
                async def probe() -> bool:
                    async with http.get(f"{base}/v1/chargers/{cp}/connectors", headers=admin) as r:
                        body = await r.json()
                        return r.status == 200 and [c["status"] for c in body["items"]] == [status]
                return probe

            await send_status("Preparing")
            await eventually(shows("Preparing"), timeout=30)

            # the HTTP worker has no consumer: these figures come from the consumers worker's file
            async with http.get(f"{base}/metrics") as r:
                exposition = await r.text()
            applied = [line for line in exposition.splitlines()
                       if line.startswith("cpms_consumer_messages_total") and "charger-events" in line and 'result="applied"' in line]
            assert applied and float(applied[0].rsplit(" ", 1)[1]) >= 1, applied

            os.kill(roles["consumers"], signal.SIGKILL)
            restarted = await eventually(lambda: _restarted(parent.pid, roles["consumers"]), timeout=30)
            assert restarted != roles["consumers"]
            await send_status("Charging")  # applied by the new consumers worker
            await eventually(shows("Charging"), timeout=30)

        parent.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(parent.wait(), timeout=40) == 0
        assert _workers_of(parent.pid) == {}
    finally:
        if parent.returncode is None:
            parent.kill()
            await parent.wait()
        await delete_broker_objects(prefix)
        await db.drop_database(f"{PG_URL}/{name}")


async def _restarted(parent: int, old: int) -> int | None:
    pid = _workers_of(parent).get("consumers")
    return pid if pid is not None and pid != old else None


async def test_workers_refused_by_a_dependency_stop_the_parent_with_exit_code_2(settings):
    code, stderr = await _run_until_exit({
        "CPMS_DATABASE_URL": settings.database_url, "CPMS_WORKERS": "2",
        "CPMS_AMQP_URL": "amqp://guest:wrong-password@127.0.0.1:5672/",
        "CPMS_LISTEN_ADDR": f"127.0.0.1:{_free_port()}", "CPMS_AMQP_PREFIX": f"workers-{uuid.uuid4().hex[:6]}",
    })
    assert code == 2, stderr
    assert "the broker at 127.0.0.1:5672 refused the connection" in stderr, stderr
    assert "wrong-password" not in stderr
