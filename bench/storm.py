"""The reconnect storm: the gateway restarts and N registered chargers reconnect at once, 64 in
flight, each as the gateway plays it (one request at a time per charger): the handshake's auth,
then ChargerBooted and two ConnectorStatusChanged (connector 0 and connector 1). Meanwhile
chargers that stayed connected keep sending events at a steady rate; their latency is measured
before the storm (the baseline) and during it.

Two storms, one after the other: cold (this CPMS has verified none of these secrets yet, as after
its own restart: one scrypt each) and warm (it verified each of them in the cold storm). The storm
is over when every charger's boot and both statuses are applied in the sessions service (read
from its tables); none may be refused, lost or applied twice."""
from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson

from bench.http_client import KeepAliveClient
from bench.load import SendResult, Sender, events_of, make_chargers, percentiles
from services.ingest.secrets import hash_secret

SECRETS = 16  # distinct secrets among the chargers: hashing them is the only scrypt the fill pays
IN_FLIGHT = 64


def secret_of(i: int) -> str:
    return f"storm-secret-{i % SECRETS:02d}"


def charger_ids(run: str, n: int) -> list[str]:
    return [f"STORM-{run}-{i:06d}" for i in range(n)]


async def register(database_url: str, run: str, n: int, *, registered: int = 0) -> list[tuple[str, str]]:
    """The storm's first N chargers, (chargePointId, secret) each; those from `registered` on are
    written to ingest's registry by COPY (registering each through the API would cost a scrypt each)."""
    ids = charger_ids(run, n)
    if n > registered:
        hashes = [hash_secret(secret_of(k)) for k in range(SECRETS)]
        conn = await asyncpg.connect(database_url)
        try:
            await conn.copy_records_to_table("chargers", schema_name="ingest", columns=["charge_point_id", "secret_hash", "is_active"],
                                             records=[(cp, hashes[i % SECRETS], True) for i, cp in enumerate(ids) if i >= registered])
        finally:
            await conn.close()
    return [(cp, secret_of(i)) for i, cp in enumerate(ids)]


def reconnect_events(cp: str, at: datetime) -> list[dict]:
    def ts(seconds: float) -> str:
        return (at + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")

    return [
        {"type": "ChargerBooted", "chargePointId": cp, "ts": ts(0), "vendor": "Bench", "model": "B1", "firmwareVersion": "1.0", "ocppVersion": "1.6"},
        {"type": "ConnectorStatusChanged", "chargePointId": cp, "ts": ts(1), "connectorId": 0, "status": "Available", "errorCode": "NoError"},
        {"type": "ConnectorStatusChanged", "chargePointId": cp, "ts": ts(1), "connectorId": 1, "status": "Available", "errorCode": "NoError"},
    ]


@dataclass
class Storm:
    auth: list[float] = field(default_factory=list)
    events: list[float] = field(default_factory=list)
    refused: int = 0
    retried: int = 0


async def reconnect(ingest_url: str, api_key: str, chargers: list[tuple[str, str]], at: datetime) -> Storm:
    client = KeepAliveClient(ingest_url, IN_FLIGHT)
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    waiting = deque(chargers)
    storm = Storm()

    async def post(path: str, body: bytes, latencies: list[float]) -> int:
        while True:
            t0 = time.perf_counter()
            status, _ = await client.request("POST", path, body, headers)
            latencies.append(time.perf_counter() - t0)
            if status != 503:
                return status
            storm.retried += 1
            await asyncio.sleep(0.1)

    async def gateway_connection() -> None:
        while waiting:
            cp, secret = waiting.popleft()
            body = orjson.dumps({"presentedSecret": secret, "remoteAddr": "10.1.0.1:40000"})
            if await post(f"/v1/gateway/chargers/{cp}/auth", body, storm.auth) != 200:
                storm.refused += 1
                continue
            for event in reconnect_events(cp, at):
                status = await post("/v1/gateway/events", orjson.dumps(event), storm.events)
                if status != 202:
                    raise RuntimeError(f"ingest answered {status} to {cp}'s {event['type']}")

    try:
        await asyncio.gather(*(gateway_connection() for _ in range(IN_FLIGHT)))
    finally:
        await client.close()
    return storm


async def applied_at(database_url: str, run: str, at: datetime, expected: int, timeout: float) -> float:
    """When the sessions service holds every storm charger's boot and both statuses of `at`."""
    conn = await asyncpg.connect(database_url)
    try:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            applied = await conn.fetchval(
                "SELECT (SELECT count(*) FROM sessions.connectors WHERE charge_point_id LIKE $1 AND status_at >= $2)"
                " + (SELECT count(*) FROM sessions.chargers WHERE charge_point_id LIKE $1 AND booted_at >= $2)",
                f"STORM-{run}-%", at)
            if applied >= 3 * expected:
                return time.perf_counter()
            await asyncio.sleep(0.1)
        raise TimeoutError(f"the storm's state was not applied after {timeout}s")
    finally:
        await conn.close()


def connected_events(run: str, group: int = 200):
    """The events of chargers that stayed connected, without end: sessions of `group` chargers at a
    time (each charger's order kept), then the next `group`."""
    offset = 0
    while True:
        plans = [events_of(c, 10, datetime.now(UTC)) for c in make_chargers(f"{run}-connected", group, offset)]
        yield from (e for events in zip(*plans, strict=False) for e in events)
        offset += group


async def connected_load(ingest_url: str, api_key: str, run: str, rate: float, stop: asyncio.Event, result: SendResult) -> None:
    """Open loop at `rate` events/s until `stop`."""
    sender = Sender(ingest_url, api_key, 64)
    tasks: list[asyncio.Task] = []
    started = time.perf_counter()
    try:
        for i, event in enumerate(connected_events(run)):
            if stop.is_set():
                break
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(sender.post(event, result)))
        await asyncio.gather(*tasks)
    finally:
        await sender.close()


async def measure(ingest_url: str, api_key: str, database_url: str, run: str, *, chargers: int, rate: float,
                  baseline_seconds: float = 5.0) -> dict:
    registered = await register(database_url, run, chargers)
    report: dict = {"chargers": chargers, "inFlight": IN_FLIGHT, "connectedChargersRate": rate}
    stop = asyncio.Event()
    background = SendResult()
    load = asyncio.create_task(connected_load(ingest_url, api_key, run, rate, stop, background))
    await asyncio.sleep(baseline_seconds)
    report["connectedEventsBefore"] = percentiles(background.latencies)
    for kind in ("cold", "warm"):
        # each storm's events come later by the chargers' clocks, so its state replaces the last one's
        at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
        seen = len(background.latencies)
        started = time.perf_counter()
        storm = await reconnect(ingest_url, api_key, registered, at)
        admitted = time.perf_counter()
        done = await applied_at(database_url, run, at, chargers, timeout=600)
        during = background.latencies[seen:]
        report[kind] = {
            "admittedSeconds": round(admitted - started, 1),
            "appliedSeconds": round(done - started, 1),
            "chargersPerSecond": round(chargers / (done - started)),
            "auth": percentiles(storm.auth),
            "events": percentiles(storm.events),
            "refused": storm.refused,
            "retried503": storm.retried,
            "connectedEventsDuring": percentiles(during),
        }
    stop.set()
    await load
    report["correct"] = all(report[k]["refused"] == 0 for k in ("cold", "warm"))
    report["warmVsColdSpeed"] = round(report["cold"]["appliedSeconds"] / report["warm"]["appliedSeconds"], 1)
    return report

