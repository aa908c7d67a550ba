"""`python -m bench.gateway`: what a charger's call costs through the CPMS's own gateway, against
the same event posted alone as the reference gateway posts it. Runs `cpms run all` (the CPMS) and
`cpms run gateway` (in front of it) as processes of their own on a fresh database and broker
prefix, connects `--chargers` real OCPP 1.6J charge points over WebSockets, and has each send
`--calls` StatusNotifications one after another, all chargers at once; then posts the same number
of events straight to the CPMS, one request each, one lane per charger. Prints JSON: the CPU each
process took per call (or per event), throughput and latency."""
from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta

import aio_pika
import aiohttp
import asyncpg
import websockets
from ocpp.v16 import ChargePoint, call

from bench.load import Sender, SendResult, percentiles
from bench.system import System
from shared.db import ensure_database
from shared.topology import delete_topology

API_KEY, ADMIN = "bench-gateway-key", "bench-admin-token"
PG = os.environ.get("CPMS_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432")
AMQP = os.environ.get("CPMS_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
SECRET = "bench-charger-secret"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def charger_ts(base: datetime, index: int) -> str:
    return (base + timedelta(milliseconds=index)).isoformat().replace("+00:00", "Z")


async def connect(url: str, cp: str) -> tuple[ChargePoint, asyncio.Task]:
    token = base64.b64encode(f"{cp}:{SECRET}".encode()).decode()
    socket_ = await websockets.connect(f"{url}/ocpp16/{cp}", subprotocols=["ocpp1.6"],
                                       additional_headers={"Authorization": f"Basic {token}"})
    charger = ChargePoint(cp, socket_, response_timeout=60)
    return charger, asyncio.create_task(charger.start())


async def through_gateway(chargers: list[ChargePoint], calls: int) -> tuple[list[float], float]:
    latencies: list[float] = []
    base = datetime.now(UTC)

    async def play(charger: ChargePoint) -> None:
        for index in range(calls):
            started = time.perf_counter()
            await charger.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Available",
                                                       timestamp=charger_ts(base, index)), suppress=False)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(play(c) for c in chargers))
    return latencies, time.perf_counter() - started


async def posted_alone(api_url: str, ids: list[str], calls: int) -> SendResult:
    sender, result = Sender(api_url, API_KEY, len(ids)), SendResult()
    base = datetime.now(UTC)

    async def lane(cp: str) -> None:
        for index in range(calls):
            await sender.post({"type": "ConnectorStatusChanged", "chargePointId": cp, "connectorId": 1, "status": "Available",
                               "errorCode": "NoError", "ts": charger_ts(base, index)}, result)

    result.started = time.perf_counter()
    await asyncio.gather(*(lane(cp) for cp in ids))
    result.finished = time.perf_counter()
    await sender.close()
    return result


async def run(chargers: int, calls: int) -> dict:
    run_id = uuid.uuid4().hex[:8]
    database_url, prefix = f"{PG}/cpms_bench_gw_{run_id}", f"bench-gw-{run_id}"
    await ensure_database(database_url)
    system = System({**os.environ, "CPMS_DATABASE_URL": database_url, "CPMS_AMQP_URL": AMQP, "CPMS_AMQP_PREFIX": prefix,
                     "CPMS_API_KEY": API_KEY, "CPMS_ADMIN_TOKEN": ADMIN, "CPMS_LOG_LEVEL": "WARNING",
                     "CPMS_GATEWAY_LISTEN_ADDR": f"127.0.0.1:{free_port()}"})  # the one beside the API idles
    system.start("all")
    api_url = system.base_url("all")
    system.start("gateway", env={"CPMS_BASE_URL": api_url})
    gateway_port = system.process("gateway").port
    tasks: list[asyncio.Task] = []
    try:
        await system.wait_ready()
        ids = [f"BENCH-GW-{run_id}-{n}" for n in range(chargers)]
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN}"}) as admin:
            for cp in ids:
                async with admin.post(f"{api_url}/v1/chargers", json={"chargePointId": cp, "secret": SECRET}) as answer:
                    assert answer.status == 201, await answer.text()
        connected = [await connect(f"ws://127.0.0.1:{gateway_port}", cp) for cp in ids]
        tasks = [task for _, task in connected]
        await asyncio.sleep(1)  # the connection events are in

        before = system.cpu_seconds()
        latencies, seconds = await through_gateway([charger for charger, _ in connected], calls)
        after = system.cpu_seconds()
        total = chargers * calls

        def per_call(name: str, was: dict, now: dict) -> float:
            return round((now[name] - was[name]) * 1000 / total, 3)

        through = {"cpmsCpuMsPerCall": per_call("all", before, after), "gatewayCpuMsPerCall": per_call("gateway", before, after),
                   "callsPerSecond": round(total / seconds, 1), **percentiles(latencies)}
        before = system.cpu_seconds()
        alone = await posted_alone(api_url, ids, calls)
        after = system.cpu_seconds()
        return {
            "chargers": chargers, "callsEach": calls, "calls": total, "throughGateway": through,
            "postedAlone": {"cpmsCpuMsPerEvent": per_call("all", before, after),
                            "eventsPerSecond": round(total / alone.seconds, 1), **percentiles(alone.latencies)},
            "note": "cpms: the `cpms run all` process (ingest, consumers, API); gateway: the `cpms run gateway` process",
        }
    finally:
        for task in tasks:
            task.cancel()
        system.stop()
        conn = await asyncpg.connect(f"{PG}/postgres")
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "cpms_bench_gw_{run_id}" WITH (FORCE)')
        finally:
            await conn.close()
        with contextlib.suppress(Exception):
            amqp = await aio_pika.connect(AMQP)
            async with amqp:
                await delete_topology(await amqp.channel(), prefix)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway", description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, default=200)
    parser.add_argument("--calls", type=int, default=20, help="StatusNotifications per charger")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.chargers, args.calls)), indent=2))


if __name__ == "__main__":
    main()
