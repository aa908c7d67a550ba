"""`python -m bench`: run the CPMS as real processes on a fresh database and broker prefix, play
chargers through the gateway API, check every session, energy and amount against what the
generator expects, and print a JSON report with each figure beside the machine's own limit."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import aio_pika
import aiohttp
import asyncpg

from bench import baseline, fill, fleet, storm
from bench.load import Charger, SendResult, Sender, events_of, make_chargers, percentiles, send_batches, send_paced, send_single
from bench.system import System, listen_overflows, machine_cpu_between, machine_cpu_seconds
from shared.topology import delete_topology

API_KEY, ADMIN = "bench-gateway-key", "bench-admin-token"
PG = os.environ.get("CPMS_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432")
AMQP = os.environ.get("CPMS_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


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


async def run_load(system: System, database_url: str, *, run: str, chargers: int, samples: int, mode: str,
                   concurrency: int, batch: int, offset: int = 0, rate: float = 0, check: bool = True,
                   profile: str | None = None, label: str = "") -> dict:
    plans_for = make_chargers(run, chargers, offset)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=max(concurrency, 64))) as http:
        admin = Admin(http, system)
        await prepare_site(admin, plans_for)
        # sessions start after the tariff was created, so it applies to them
        plans = [events_of(c, samples, datetime.now(UTC)) for c in plans_for]
        conn = await asyncpg.connect(database_url)
        if await conn.fetchval("SHOW autovacuum") == "off":
            # What autovacuum would have done by now in a normal deployment: without it the
            # tables that take updates and deletes (sessions, chargers, outboxes) bloat run after
            # run, and each run would measure the dead rows of the ones before.
            await conn.execute("VACUUM (ANALYZE)")
        since = await conn.fetchval("SELECT now()")
        work_before = await database_work(conn)
        await conn.close()
        # paced mode posts open loop, so its requests queue for a connection beyond this many
        sender = Sender(system.base_url("ingest"), API_KEY, 256 if mode == "paced" else max(concurrency, 64),
                        new_connection_per_request=mode == "churn")
        profiles = system.profile(profile, label or mode)
        cpu_before, machine_before = system.cpu_seconds(), machine_cpu_seconds()
        overflows_before = listen_overflows()
        sent = SendResult()
        try:
            if mode in ("single", *AS_THE_GATEWAY):
                await send_single(sender, plans, concurrency, sent, as_the_gateway=mode in AS_THE_GATEWAY)
            elif mode == "paced":
                await send_paced(sender, plans, rate, sent)
            else:
                await send_batches(sender, plans, batch, concurrency, sent)
        finally:
            await sender.close()
        overflows = listen_overflows() - overflows_before
        # Played as the gateway, a session whose end was lost is never settled: wait for the others.
        settled = len(sent.ended_accepted_at) if mode in AS_THE_GATEWAY else chargers
        # A bound, not a target: the slowest end-to-end rate a run may have (500 events/s), and 2 min at least.
        done = await wait_for_settlements(database_url, since, settled, timeout=max(120.0, sum(len(p) for p in plans) / 500))
        cpu_after, machine_after = system.cpu_seconds(), machine_cpu_seconds()
        profiles.stop()
        conn = await asyncpg.connect(database_url)
        work_after = await database_work(conn)
        await conn.close()
        checked = await verify(admin, plans_for, sent) if check else {"errors": [], "errorCount": 0, "lag": {}}
    total_events = sum(len(p) for p in plans)
    cpu = sum(cpu_after.values()) - sum(cpu_before.values())
    other = machine_cpu_between(machine_before, machine_after)
    return {
        "mode": mode, "chargers": chargers, "events": total_events, "concurrency": concurrency,
        **({"batchSize": batch} if mode == "batch" else {}), **({"offeredRate": rate} if mode == "paced" else {}),
        "acceptedEventsPerSecond": round(sent.events / sent.seconds),
        "endToEndEventsPerSecond": round(total_events / (done - sent.started)),
        "ingestLatency": percentiles(sent.latencies),
        "endToEndLag": checked["lag"],
        "cpuSecondsPer1000Events": round(cpu / total_events * 1000, 3),
        "cpuSecondsByProcess": {k: round(cpu_after[k] - cpu_before[k], 2) for k in cpu_after},
        "otherCpuSecondsPer1000Events": {k: round(v / total_events * 1000, 3) for k, v in other.items()},
        # the CPMS, Postgres, RabbitMQ and the generator together: 2 cores give 2 s a second
        "machineCpuSecondsPer1000Events": round((cpu + sum(other.values())) / total_events * 1000, 3),
        "cpmsAndPostgresCpuSecondsPer1000Events": round((cpu + other["postgres"]) / total_events * 1000, 3),
        # Postgres's work in pages and rows: unlike CPU seconds, the same whatever the machine's speed
        "postgresWorkPer1000Events": {k: round((work_after[k] - work_before[k]) / total_events * 1000) for k in work_after},
        "retried503": sent.failures,
        **({"eventsLost": sent.lost, "connectionErrors": sent.connection_errors, "timeouts": sent.timeouts,
            "listenOverflows": overflows} if mode in AS_THE_GATEWAY else {}),
        "correct": checked["errorCount"] == 0 and sent.lost == 0,
        "errors": checked["errors"],
    }


# Modes that post as the reference gateway does (`Sender.post_once`: one try, 8 s, no 2xx = lost):
# over kept-alive connections, and over a new connection for every event (what its Go client does
# once its two idle connections to the CPMS are taken), with the same chargers in flight.
AS_THE_GATEWAY = ("keepalive", "churn")


def churn_against_keepalive(runs: list[dict]) -> list[dict]:
    """For each layout that ran both: the churn run's figures beside the keep-alive run's."""
    by_layout: dict[str, dict[str, dict]] = {}
    for run in runs:
        if run["mode"] in AS_THE_GATEWAY:
            by_layout.setdefault(run["layout"], {})[run["mode"]] = run
    compared = []
    for layout, run in by_layout.items():
        if set(run) != set(AS_THE_GATEWAY):
            continue
        churn, kept = run["churn"], run["keepalive"]
        compared.append({
            "layout": layout, "chargersInFlight": churn["concurrency"], "events": churn["events"],
            "keepAlive": {k: kept[k] for k in ("ingestLatency", "eventsLost", "connectionErrors", "listenOverflows", "endToEndEventsPerSecond")},
            "churn": {k: churn[k] for k in ("ingestLatency", "eventsLost", "connectionErrors", "listenOverflows", "endToEndEventsPerSecond")},
            "p50Ratio": round(churn["ingestLatency"]["p50Ms"] / kept["ingestLatency"]["p50Ms"], 2),
            "p99Ratio": round(churn["ingestLatency"]["p99Ms"] / kept["ingestLatency"]["p99Ms"], 2),
            "endToEndRatio": round(churn["endToEndEventsPerSecond"] / kept["endToEndEventsPerSecond"], 2),
            "cpuPerEventRatio": round(churn["cpuSecondsPer1000Events"] / kept["cpuSecondsPer1000Events"], 2),
        })
    return compared


async def database_work(conn: asyncpg.Connection) -> dict[str, int]:
    """This database's pages read (from cache or disk) and rows read so far (pg_stat_database)."""
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    row = await conn.fetchrow("SELECT blks_hit + blks_read AS pages, tup_returned + tup_fetched AS rows "
                              "FROM pg_stat_database WHERE datname = current_database()")
    return {"pages": row["pages"], "rows": row["rows"]}


async def postgres_setting(database_url: str, name: str) -> str:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(f"SHOW {name}")
    finally:
        await conn.close()


async def sessions_in_tables(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval("SELECT count(*) FROM sessions.sessions")
    finally:
        await conn.close()


async def history_site(admin: Admin) -> tuple[str, str, str]:
    """The site the filled history was priced and settled at: (siteId, tariffId, wallet)."""
    site = await admin.call("POST", "billing", "/v1/sites", {"name": "Bench history"})
    tariff = await admin.call("POST", "billing", f"/v1/sites/{site['siteId']}/tariffs", {"pricePerKwh": "0.30", "currency": "USD"})
    wallet = "rBenchHistory111111111111111111"
    await admin.call("POST", "billing", f"/v1/sites/{site['siteId']}/wallet", {"wallet": wallet})
    return site["siteId"], tariff["tariffId"], wallet


GROWTH_LOADS = 2  # per step; the cheaper one counts: a slow minute of the machine only ever adds CPU


async def measure_growth(system: System, database_url: str, run: str, args: argparse.Namespace, offset: int, report: dict,
                         label: str) -> int:
    """The same single-event load, twice, after filling the tables up to each size in `--growth`
    (0: as they are). The fill (bench/fill.py) gives the very chargers the loads then play a
    history of their own, so both the tables and each charger's history grow: the cost per event
    must not. Postgres's pages and rows per event are the same whatever the machine's speed."""
    site = None
    steps = []
    for size in [int(s) for s in args.growth.split(",") if s]:
        grow = size - await sessions_in_tables(database_url)
        took = {}
        if grow > 0:
            if site is None:
                async with aiohttp.ClientSession() as http:
                    site = await history_site(Admin(http, system))
            ids = [c.charge_point_id for c in make_chargers(run, args.chargers * GROWTH_LOADS, offset)]
            started = time.perf_counter()
            took = await fill.fill_history(database_url, ids, max(1, grow // len(ids)),
                                           before=datetime.now(UTC) - timedelta(minutes=10),
                                           site_id=site[0], tariff_id=site[1], wallet=site[2])
            took["total"] = round(time.perf_counter() - started, 1)
        before = await sessions_in_tables(database_url)
        loads = []
        for _ in range(GROWTH_LOADS):
            result = await run_load(system, database_url, run=run, chargers=args.chargers, samples=args.samples,
                                    mode="single", concurrency=args.concurrency, batch=args.batch, offset=offset,
                                    profile=args.profile, label=f"growth-{before}-{len(loads)}")
            offset += args.chargers
            result["layout"] = f"{label}, {before} sessions already in the tables"
            result["sessionsInTables"] = before
            result["fillSeconds"] = took
            result["peakRssBytes"] = system.peak_rss()
            report["runs"].append(result)
            loads.append(result)
            print(json.dumps({k: result[k] for k in ("layout", "endToEndEventsPerSecond", "cpmsAndPostgresCpuSecondsPer1000Events",
                                                     "postgresWorkPer1000Events", "correct")}), file=sys.stderr)
        steps.append(min(loads, key=lambda r: r["cpmsAndPostgresCpuSecondsPer1000Events"]))
    if len(steps) > 1:
        first, last = steps[0], steps[-1]

        def ratio(of) -> float:
            return round(of(last) / of(first), 3) if of(first) else 0.0

        report["growth"] = {
            "sessionsFrom": first["sessionsInTables"], "sessionsTo": last["sessionsInTables"],
            "cpmsAndPostgresCpuPerEventRatio": ratio(lambda r: r["cpmsAndPostgresCpuSecondsPer1000Events"]),  # target <= 1.15
            "cpmsCpuPerEventRatio": ratio(lambda r: r["cpuSecondsPer1000Events"]),
            "postgresPagesPerEventRatio": ratio(lambda r: r["postgresWorkPer1000Events"]["pages"]),
            "postgresRowsPerEventRatio": ratio(lambda r: r["postgresWorkPer1000Events"]["rows"]),
            "endToEndRatio": ratio(lambda r: r["endToEndEventsPerSecond"]),
        }
    return offset


@dataclass(frozen=True)
class Layout:
    label: str
    replicas: int  # 0: `cpms run all`; n: one process per service, n of sessions and billing
    workers: int = 1  # CPMS_WORKERS of `cpms run all`
    main: bool = False  # the layout the storm and the growth steps run on

    def start(self, env: dict[str, str]) -> System:
        system = System({**env, "CPMS_WORKERS": str(self.workers)})
        if self.replicas == 0:
            system.start("all", 18081)
        else:
            system.start("ingest", 18091)
            system.start("commands", 18094)
            for r in range(self.replicas):
                system.start("sessions", 18092 + 10 * r, r)
                system.start("billing", 18093 + 10 * r, r)
        return system


def layouts_of(args: argparse.Namespace) -> list[Layout]:
    chosen = [Layout("all-in-one, 1 process", 0)]
    if args.workers > 1:
        chosen.append(Layout(f"all-in-one, {args.workers} workers", 0, args.workers))
    if not args.skip_replicas:
        chosen += [Layout("1 replica of each consumer service", 1), Layout("2 replicas of each consumer service", 2)]
    main_label = chosen[1].label if args.workers > 1 else chosen[0].label
    return [Layout(x.label, x.replicas, x.workers, x.label == main_label) for x in chosen]


def targets(report: dict, layout: str) -> dict:
    """The figures the CPMS is held to, each with its limit in this run and the ratio (docs/benchmarks.md)."""
    limits = report["limits"]
    run = {r["mode"]: r for r in report["runs"] if r["layout"] == layout}
    found: dict = {"layout": layout}

    def figure(name: str, value: float, limit: float, target: str, met: bool, **more) -> None:
        found[name] = {"value": value, "limit": limit, "ratio": round(value / limit, 3) if limit else None, "target": target,
                       "met": met, **more}

    if "single" in run:
        e2e = run["single"]["endToEndEventsPerSecond"]
        figure("singleEndToEndVsBareHttp", e2e, limits["bareHttpRequestsPerSecond"], ">= 0.25", e2e >= 0.25 * limits["bareHttpRequestsPerSecond"])
    if "paced" in run and "single" in run:
        paced, full = run["paced"]["machineCpuSecondsPer1000Events"], run["single"]["machineCpuSecondsPer1000Events"]
        figure("pacedMachineCpuVsFullLoad", paced, full, "<= 1.3", paced <= 1.3 * full)
        p99 = run["paced"]["ingestLatency"]["p99Ms"]
        figure("pacedIngestP99Ms", p99, 30, "<= 30 ms", p99 <= 30, confirmP99MsAt1000PerSecond=limits["confirmLatencyAt1000PerSecond"]["p99Ms"])
    if "batch" in run:
        accepted, e2e = run["batch"]["acceptedEventsPerSecond"], run["batch"]["endToEndEventsPerSecond"]
        figure("batchAccepted", accepted, 15000, ">= 15,000/s", accepted >= 15000)
        figure("batchEndToEndVsAccepted", e2e, accepted, ">= 0.5", e2e >= 0.5 * accepted)
    if "storm" in report:
        warm = report["storm"]["warm"]
        figure("stormWarmAppliedSeconds", warm["appliedSeconds"], 30, "<= 30 s", warm["appliedSeconds"] <= 30,
               chargers=report["storm"]["chargers"], coldAppliedSeconds=report["storm"]["cold"]["appliedSeconds"])
        figure("stormWarmAuthP99Ms", warm["auth"]["p99Ms"], 250, "<= 250 ms", warm["auth"]["p99Ms"] <= 250)
        during = warm["connectedEventsDuring"]["p99Ms"]
        figure("stormConnectedEventsP99Ms", during, 100, "<= 100 ms", during <= 100,
               before=report["storm"]["connectedEventsBefore"]["p99Ms"])
    if "growth" in report:
        ratio = report["growth"]["cpmsAndPostgresCpuPerEventRatio"]
        figure("growthCpuPerEvent", ratio, 1.15, "<= 1.15", ratio <= 1.15,
               sessionsFrom=report["growth"]["sessionsFrom"], sessionsTo=report["growth"]["sessionsTo"],
               postgresPagesPerEventRatio=report["growth"]["postgresPagesPerEventRatio"],
               postgresRowsPerEventRatio=report["growth"]["postgresRowsPerEventRatio"])
    for compared in report.get("churn", []):
        if compared["layout"] == layout:
            churn = compared["churn"]
            figure("churnEventsLost", churn["eventsLost"], 0, "0", churn["eventsLost"] == 0, chargersInFlight=compared["chargersInFlight"],
                   connectionErrors=churn["connectionErrors"], listenOverflows=churn["listenOverflows"], p99Ratio=compared["p99Ratio"])
    if "fleet" in report:
        before, after = report["fleet"]["peakRssBytesBefore"], report["fleet"]["peakRssBytesAfter"]
        grown = max(after[k] / before[k] for k in after if before.get(k))
        figure("fleetPeakRssGrowth", round(grown, 3), 1.0, "no growth with 10x the chargers", grown <= 1.05,
               chargersInTables=report["fleet"]["chargersInTables"])
    return found


async def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--chargers", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=10, help="meter samples per session")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--paced-rate", type=float, default=1000)
    parser.add_argument("--growth", default="", help="comma-separated table sizes in sessions, e.g. 10000,50000")
    parser.add_argument("--storm", type=int, default=0, help="chargers in the reconnect storm (0: none)")
    parser.add_argument("--storm-connected-rate", type=float, default=200, help="events/s of the chargers that stay connected")
    parser.add_argument("--modes", default="single,paced,batch",
                        help="which of the loads each layout runs: single, paced, batch, and churn (as the reference gateway "
                             "posts: a new connection for every event, beside the same load over kept-alive connections)")
    parser.add_argument("--in-flight", type=int, default=500, help="chargers in flight at once in the churn mode")
    parser.add_argument("--fleet", type=int, default=0, help="chargers added by boots in batches, for memory against fleet size")
    parser.add_argument("--workers", type=int, default=2, help="CPMS_WORKERS of the all-in-one layout the storm and growth run on")
    parser.add_argument("--skip-replicas", action="store_true")
    parser.add_argument("--profile", metavar="DIR", help="record each run's CPMS processes with py-spy into DIR")
    args = parser.parse_args()

    run = uuid.uuid4().hex[:8]
    database_url = f"{PG}/cpms_bench_{run}"
    env = {**os.environ, "CPMS_DATABASE_URL": database_url, "CPMS_AMQP_URL": AMQP, "CPMS_AMQP_PREFIX": f"bench-{run}",
           "CPMS_API_KEY": API_KEY, "CPMS_ADMIN_TOKEN": ADMIN, "CPMS_LOG_LEVEL": "WARNING"}
    from shared.db import drop_database, ensure_database

    await ensure_database(database_url)
    meter_sample = events_of(make_chargers(run, 1)[0], 1, datetime.now(UTC))[3]  # after boot, status and start
    report: dict = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": platform.platform(),
                    "memoryGiB": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)},
        "postgresAutovacuum": await postgres_setting(database_url, "autovacuum"),
        "limits": await baseline.measure(database_url, AMQP, meter_sample),
        "runs": [],
    }
    print(json.dumps({"limits": report["limits"]}), file=sys.stderr)
    offset = 0
    for layout in layouts_of(args):
        system = layout.start(env)
        try:
            await system.wait_ready()
            modes = args.modes.split(",")
            if "churn" in modes:
                modes.append("keepalive")
            full = [(mode, concurrency) for mode, concurrency in (("single", args.concurrency), ("paced", 0), ("batch", 8),
                                                                   ("keepalive", args.in_flight), ("churn", args.in_flight))
                    if mode in modes]
            phases = full if layout.replicas < 2 else full[:1]
            for mode, concurrency in phases:
                result = await run_load(system, database_url, run=run, chargers=args.chargers if mode != "paced" else args.chargers // 2,
                                        samples=args.samples, mode=mode, concurrency=concurrency, batch=args.batch,
                                        offset=offset, rate=args.paced_rate, profile=args.profile,
                                        label=f"{mode}-{layout.replicas}-{layout.workers}")
                offset += args.chargers
                result["layout"] = layout.label
                result["peakRssBytes"] = system.peak_rss()
                report["runs"].append(result)
                print(json.dumps({k: result[k] for k in ("layout", "mode", "acceptedEventsPerSecond", "endToEndEventsPerSecond", "ingestLatency",
                                                         "eventsLost", "connectionErrors", "correct") if k in result}), file=sys.stderr)
            if layout.main and args.storm:
                report["storm"] = await storm.measure(system.base_url("ingest"), API_KEY, database_url, run,
                                                      chargers=args.storm, rate=args.storm_connected_rate)
                report["storm"]["layout"] = layout.label
                report["storm"]["peakRssBytes"] = system.peak_rss()
                print(json.dumps({"storm": report["storm"]}), file=sys.stderr)
            if layout.main:
                offset = await measure_growth(system, database_url, run, args, offset, report, layout.label)
            if layout.main and args.fleet:
                before = system.peak_rss()
                report["fleet"] = await fleet.grow_fleet(system.base_url("ingest"), API_KEY, database_url, run, args.fleet)
                report["fleet"].update(peakRssBytesBefore=before, peakRssBytesAfter=system.peak_rss())
                print(json.dumps({"fleet": report["fleet"]}), file=sys.stderr)
        finally:
            system.stop()
    limits = report["limits"]
    for result in report["runs"]:
        result["fractionOfLimits"] = {
            "endToEndVsConfirmedPublishes": round(result["endToEndEventsPerSecond"] / limits["confirmedPublishesPerSecond"], 3),
            "acceptedVsConfirmedPublishes": round(result["acceptedEventsPerSecond"] / limits["confirmedPublishesPerSecond"], 3),
            "endToEndVsSingleRowCommits": round(result["endToEndEventsPerSecond"] / limits["postgresSingleRowCommitsPerSecond"], 3),
            "requestsVsBareHttp": round(result["acceptedEventsPerSecond"] / result.get("batchSize", 1) / limits["bareHttpRequestsPerSecond"], 3),
        }
    if churn := churn_against_keepalive(report["runs"]):
        report["churn"] = churn
    report["correct"] = all(r["correct"] for r in report["runs"]) and report.get("storm", {}).get("correct", True)
    report["targets"] = targets(report, next((x.label for x in layouts_of(args) if x.main), ""))
    print(json.dumps(report, indent=2))
    print(json.dumps({"targets": report["targets"]}, indent=2), file=sys.stderr)
    await drop_database(database_url)
    async with await aio_pika.connect(AMQP) as amqp:
        await delete_topology(await amqp.channel(), f"bench-{run}")
    if not report["correct"]:
        sys.exit(1)


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()  # the load generator shares the machine: keep its own cost low
    except ImportError:
        pass
    asyncio.run(main())
