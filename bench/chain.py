"""The whole chain, measured: a load of chargers' sessions sent to the CPMS (through any path: POSTs
to ingest, OCPP calls to the gateway), until every session is priced and settled; then every
session, energy and amount read back through the API and checked, and the CPU every process took
per event (the CPMS's own, Postgres's, RabbitMQ's, the load generator's)."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from decimal import Decimal

import aiohttp
import asyncpg

from bench.load import Charger, SendResult, percentiles
from bench.system import System, listen_overflows, machine_cpu_between, machine_cpu_seconds

API_KEY, ADMIN = "bench-gateway-key", "bench-admin-token"


class Admin:
    def __init__(self, http: aiohttp.ClientSession, system: System) -> None:
        self.http, self.system = http, system
        self.headers = {"Authorization": f"Bearer {ADMIN}"}

    async def call(self, method: str, service: str, path: str, json_body=None):
        async with self.http.request(method, self.system.base_url(service) + path, json=json_body, headers=self.headers) as r:
            body = await r.json(content_type=None)
            if r.status >= 400:
                raise RuntimeError(f"{method} {path}: {r.status} {body}")
            return body


async def prepare_site(admin: Admin, chargers: list[Charger], concurrency: int = 16) -> str:
    site = await admin.call("POST", "billing", "/v1/sites", {"name": "Bench site"})
    await admin.call("POST", "billing", f"/v1/sites/{site['siteId']}/tariffs", {"pricePerKwh": "0.30", "currency": "USD"})
    await admin.call("POST", "billing", f"/v1/sites/{site['siteId']}/wallet", {"wallet": "rBenchWallet1111111111111111111"})
    queue = list(chargers)

    async def assign() -> None:
        while queue:
            charger = queue.pop()
            await admin.call("PUT", "billing", f"/v1/chargers/{charger.charge_point_id}/site", {"siteId": site["siteId"]})

    await asyncio.gather(*(assign() for _ in range(concurrency)))
    await asyncio.sleep(1.0)  # the assignments reach sessions/billing consumers
    return site["siteId"]


async def wait_for_settlements(database_url: str, since: datetime, expected: int, timeout: float) -> float:
    """The end-to-end clock stops when the last settlement exists (read straight from the table).
    Only this run's settlements are counted, by the created-at index: a count of the whole table
    20 times a second would itself load Postgres more as the tables grow."""
    conn = await asyncpg.connect(database_url)
    try:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if await conn.fetchval("SELECT count(*) FROM billing.settlements WHERE created_at >= $1", since) >= expected:
                return time.perf_counter()
            await asyncio.sleep(0.05)
        raise TimeoutError(f"fewer than {expected} settlements after {timeout}s")
    finally:
        await conn.close()


async def verify(admin: Admin, chargers: list[Charger], sent: SendResult, concurrency: int = 16) -> dict:
    """Every session through the API: finalized, right energy, right amount. Any difference fails the run."""
    errors: list[str] = []
    lags: list[float] = []
    queue = list(chargers)

    async def fetch(charger: Charger) -> list[dict]:
        # the settlement exists before sessions has applied `session.priced`: give it a moment
        for _ in range(100):
            body = await admin.call("GET", "sessions", f"/v1/chargers/{charger.charge_point_id}/sessions?limit=5")
            sessions = [s for s in body["items"] if s["transactionId"] == charger.transaction_id]
            if sessions and all(s["status"] == "Finalized" and s.get("costAmount") is not None for s in sessions):
                break
            await asyncio.sleep(0.2)
        return sessions

    async def check() -> None:
        while queue:
            charger = queue.pop()
            sessions = await fetch(charger)
            if len(sessions) != 1:
                errors.append(f"{charger.charge_point_id}: {len(sessions)} sessions")
                continue
            s = sessions[0]
            if s["status"] != "Finalized" or s["energyWh"] != charger.energy_wh or s["energySource"] != "StopTransaction":
                errors.append(f"{charger.charge_point_id}: {s['status']} {s['energyWh']} {s['energySource']} != {charger.energy_wh}")
            if s.get("costAmount") is None or Decimal(s["costAmount"]) != charger.expected_cost:
                errors.append(f"{charger.charge_point_id}: cost {s.get('costAmount')} != {charger.expected_cost}")
            accepted = sent.ended_accepted_at.get(charger.charge_point_id)
            if accepted and s.get("finalizedAt"):
                lags.append((datetime.fromisoformat(s["finalizedAt"]) - accepted).total_seconds())

    await asyncio.gather(*(check() for _ in range(concurrency)))
    return {"errors": errors[:20], "errorCount": len(errors), "lag": percentiles([max(lag, 0.0) for lag in lags])}


# Sends the load's plans (one per charger, in the chargers' order), timing it into the SendResult;
# returns the chargers as the CPMS knows them when the path gave them new transaction ids, else None.
SendPlans = Callable[[list, SendResult], Awaitable[list[Charger] | None]]


async def measure_chain(system: System, database_url: str, chargers: list[Charger], plans_of: Callable[[list[Charger]], list],
                        send: SendPlans, *, check: bool = True, profile: str | None = None, label: str = "",
                        latency: str = "ingestLatency", leave_out: Sequence[str] = (), lossy: bool = False) -> dict:
    """One load: `plans_of(chargers)` (a list of events, or of (time, event), per charger) sent by
    `send`, measured until the last settlement exists, then checked. `leave_out`: processes of
    the system that this path does not use (their CPU is listed, not counted). `lossy`: the path
    drops what gets no 2xx, as the reference gateway does (the events lost are counted)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as http:
        admin = Admin(http, system)
        await prepare_site(admin, chargers)
        # sessions start after the tariff was created, so it applies to them
        plans = plans_of(chargers)
        conn = await asyncpg.connect(database_url)
        if await conn.fetchval("SHOW autovacuum") == "off":
            # What autovacuum would have done by now in a normal deployment: without it the
            # tables that take updates and deletes (sessions, chargers, outboxes) bloat run after
            # run, and each run would measure the dead rows of the ones before.
            await conn.execute("VACUUM (ANALYZE)")
        since = await conn.fetchval("SELECT now()")
        work_before = await database_work(conn)
        await conn.close()
        profiles = system.profile(profile, label)
        cpu_before, workers_before, machine_before = system.cpu_seconds(), system.cpu_seconds_by_worker(), machine_cpu_seconds()
        overflows_before = listen_overflows()
        sent = SendResult()
        chargers = await send(plans, sent) or chargers
        overflows = listen_overflows() - overflows_before
        total_events = sum(len(p) for p in plans)
        # Played as the gateway, a session whose end was lost is never settled: wait for the others.
        settled = len(sent.ended_accepted_at) if lossy else len(chargers)
        # A bound, not a target: the slowest end-to-end rate a run may have (500 events/s), and 2 min at least.
        done = await wait_for_settlements(database_url, since, settled, timeout=max(120.0, total_events / 500))
        cpu_after, workers_after, machine_after = system.cpu_seconds(), system.cpu_seconds_by_worker(), machine_cpu_seconds()
        profiles.stop()
        conn = await asyncpg.connect(database_url)
        work_after = await database_work(conn)
        await conn.close()
        checked = await verify(admin, chargers, sent) if check else {"errors": [], "errorCount": 0, "lag": {}}
    cpu = sum(cpu_after[k] - cpu_before.get(k, 0.0) for k in cpu_after if k not in leave_out)
    other = machine_cpu_between(machine_before, machine_after)
    return {
        "chargers": len(chargers), "events": total_events,
        "acceptedEventsPerSecond": round(sent.events / sent.seconds),
        "endToEndEventsPerSecond": round(total_events / (done - sent.started)),
        latency: percentiles(sent.latencies),
        "endToEndLag": checked["lag"],
        "cpuSecondsPer1000Events": round(cpu / total_events * 1000, 3),
        "cpuSecondsByProcess": {k: round(cpu_after[k] - cpu_before.get(k, 0.0), 2) for k in cpu_after},
        "cpuSecondsByWorker": {k: round(workers_after[k] - workers_before.get(k, 0.0), 2) for k in workers_after},
        **({"cpuNotCounted": list(leave_out)} if leave_out else {}),
        "otherCpuSecondsPer1000Events": {k: round(v / total_events * 1000, 3) for k, v in other.items()},
        # the CPMS, Postgres, RabbitMQ and the generator together: 2 cores give 2 s a second
        "machineCpuSecondsPer1000Events": round((cpu + sum(other.values())) / total_events * 1000, 3),
        "cpmsAndPostgresCpuSecondsPer1000Events": round((cpu + other["postgres"]) / total_events * 1000, 3),
        # everything the path runs but the load generator: the CPMS (and gateway), Postgres and RabbitMQ
        "allButGeneratorCpuSecondsPer1000Events": round((cpu + other["postgres"] + other["rabbitmq"]) / total_events * 1000, 3),
        # Postgres's work in pages and rows: unlike CPU seconds, the same whatever the machine's speed
        "postgresWorkPer1000Events": {k: round((work_after[k] - work_before[k]) / total_events * 1000) for k in work_after},
        "retried503": sent.failures,
        **({"eventsLost": sent.lost, "connectionErrors": sent.connection_errors, "timeouts": sent.timeouts,
            "listenOverflows": overflows} if lossy else {}),
        "correct": checked["errorCount"] == 0 and sent.lost == 0,
        "errors": checked["errors"],
    }


async def database_work(conn: asyncpg.Connection) -> dict[str, int]:
    """This database's pages read (from cache or disk) and rows read so far (pg_stat_database)."""
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    row = await conn.fetchrow("SELECT blks_hit + blks_read AS pages, tup_returned + tup_fetched AS rows "
                              "FROM pg_stat_database WHERE datname = current_database()")
    return {"pages": row["pages"], "rows": row["rows"]}
