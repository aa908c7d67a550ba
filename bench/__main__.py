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

import aio_pika
import aiohttp
import asyncpg

from bench import baseline, fill, fleet, ocpp_gateway, storm
from bench.chain import ADMIN, API_KEY, Admin, measure_chain
from bench.load import SendResult, Sender, events_of, make_chargers, send_batches, send_paced, send_single
from bench.system import System, free_port
from shared.db import drop_database, ensure_database
from shared.topology import delete_topology

PG = os.environ.get("CPMS_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432")
AMQP = os.environ.get("CPMS_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


async def run_load(system: System, database_url: str, *, run: str, chargers: int, samples: int, mode: str,
                   concurrency: int, batch: int, offset: int = 0, rate: float = 0, check: bool = True,
                   profile: str | None = None, label: str = "") -> dict:
    """Sessions of `samples` meter samples each, posted to ingest one event per request (`single`),
    open loop at `rate` events/s (`paced`), in batches (`batch`), or as the reference gateway posts
    (AS_THE_GATEWAY)."""
    as_the_gateway = mode in AS_THE_GATEWAY

    async def send(plans: list[list[dict]], sent: SendResult) -> None:
        # paced mode posts open loop, so its requests queue for a connection beyond this many
        sender = Sender(system.base_url("ingest"), API_KEY, 256 if mode == "paced" else max(concurrency, 64),
                        new_connection_per_request=mode == "churn")
        try:
            if mode in ("single", *AS_THE_GATEWAY):
                await send_single(sender, plans, concurrency, sent, as_the_gateway=as_the_gateway)
            elif mode == "paced":
                await send_paced(sender, plans, rate, sent)
            else:
                await send_batches(sender, plans, batch, concurrency, sent)
        finally:
            await sender.close()

    result = await measure_chain(system, database_url, make_chargers(run, chargers, offset),
                                 lambda made: [events_of(c, samples, datetime.now(UTC)) for c in made], send,
                                 check=check, profile=profile, label=label or mode, lossy=as_the_gateway)
    return {"mode": mode, "concurrency": concurrency, **({"batchSize": batch} if mode == "batch" else {}),
            **({"offeredRate": rate} if mode == "paced" else {}), **result}


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
            system.start("all")
        else:
            system.start("ingest")
            system.start("commands")
            for r in range(self.replicas):
                system.start("sessions", r)
                system.start("billing", r)
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
    if "gatewayStorm" in report:
        gw = report["gatewayStorm"]
        figure("gatewayStormAnsweredSeconds", gw["answeredSeconds"], 30, "<= 30 s", gw["answeredSeconds"] <= 30,
               chargers=gw["chargers"], appliedSeconds=gw["appliedSeconds"])
        p99 = gw["handshakeAndBoot"]["p99Ms"]
        figure("gatewayStormHandshakeAndBootP99Ms", p99, 1000, "<= 1 s", p99 <= 1000, handshakeP99Ms=gw["handshake"]["p99Ms"])
    if "gatewayMemory" in report:
        kib = report["gatewayMemory"]["gateway"]["rssKiBPerIdleConnection"]
        figure("gatewayRssKiBPerIdleConnection", kib, 30, "<= 30 KiB", kib <= 30,
               httpPathKiBPerIdleConnection=report["gatewayMemory"]["ingest"]["rssKiBPerIdleConnection"])
    if "gateway-connected" in run and "gateway-connected-http" in run:
        ocpp, http = run["gateway-connected"], run["gateway-connected-http"]
        figure("gatewayConnectedCallP99Ms", ocpp["callLatency"]["p99Ms"], 100, "<= 100 ms", ocpp["callLatency"]["p99Ms"] <= 100,
               httpPathP99Ms=http["ingestLatency"]["p99Ms"], gatewayCpuMsPerCall=ocpp["gatewayCpuMsPerCall"],
               allButGeneratorCpuMsPerEvent=ocpp["allButGeneratorCpuSecondsPer1000Events"],
               httpPathAllButGeneratorCpuMsPerEvent=http["allButGeneratorCpuSecondsPer1000Events"])
    if "gateway-chain" in run and "gateway-chain-http" in run:
        ocpp = run["gateway-chain"]["allButGeneratorCpuSecondsPer1000Events"]
        http = run["gateway-chain-http"]["allButGeneratorCpuSecondsPer1000Events"]
        figure("gatewayChainCpuPerEventVsHttp", ocpp, http, "<= 0.6", ocpp <= 0.6 * http,
               gatewayCpuMsPerCall=run["gateway-chain"]["gatewayCpuMsPerCall"])
    if "fleet" in report:
        before, after = report["fleet"]["peakRssBytesBefore"], report["fleet"]["peakRssBytesAfter"]
        grown = max(after[k] / before[k] for k in after if before.get(k))
        figure("fleetPeakRssGrowth", round(grown, 3), 1.0, "no growth with 10x the chargers", grown <= 1.05,
               chargersInTables=report["fleet"]["chargersInTables"])
    return found


async def drop_run(run: str) -> None:
    """This run's database and broker topology, however the run ended; a failure here is told,
    never raised over the run's own."""
    try:
        await drop_database(f"{PG}/cpms_bench_{run}")
        async with await aio_pika.connect(AMQP) as amqp:
            await delete_topology(await amqp.channel(), f"bench-{run}")
    except Exception as exc:
        print(f"could not remove run {run}'s database cpms_bench_{run} or broker prefix bench-{run}: {exc!r}", file=sys.stderr)


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
                             "posts: a new connection for every event, beside the same load over kept-alive connections); "
                             "and which of " + ",".join(ocpp_gateway.MODES) + " the main layout runs")
    parser.add_argument("--in-flight", type=int, default=500, help="chargers in flight at once in the churn mode")
    parser.add_argument("--gateway-chargers", type=int, default=10_000, help="chargers connected to the OCPP gateway in its modes")
    parser.add_argument("--gateway-minutes", type=int, default=3, help="length of the gateway-connected load (at least 2)")
    parser.add_argument("--fleet", type=int, default=0, help="chargers added by boots in batches, for memory against fleet size")
    parser.add_argument("--workers", type=int, default=2, help="CPMS_WORKERS of the all-in-one layout the storm and growth run on")
    parser.add_argument("--skip-replicas", action="store_true")
    parser.add_argument("--profile", metavar="DIR", help="record each run's CPMS processes with py-spy into DIR")
    args = parser.parse_args()
    gateway_modes = [m for m in args.modes.split(",") if m in ocpp_gateway.MODES]
    if gateway_modes and args.gateway_minutes < 2:
        parser.error("--gateway-minutes must be at least 2")
    # before any process starts: they inherit it
    open_files = ocpp_gateway.open_files_limits(args.gateway_chargers) if gateway_modes else None

    run = uuid.uuid4().hex[:8]
    database_url = f"{PG}/cpms_bench_{run}"
    env = {**os.environ, "CPMS_DATABASE_URL": database_url, "CPMS_AMQP_URL": AMQP, "CPMS_AMQP_PREFIX": f"bench-{run}",
           "CPMS_API_KEY": API_KEY, "CPMS_ADMIN_TOKEN": ADMIN, "CPMS_LOG_LEVEL": "WARNING",
           "CPMS_GATEWAY_LISTEN_ADDR": f"127.0.0.1:{free_port()}"}  # `cpms run all`'s own gateway, off the default port
    await ensure_database(database_url)
    try:
        meter_sample = events_of(make_chargers(run, 1)[0], 1, datetime.now(UTC))[3]  # after boot, status and start
        report: dict = {
            "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": platform.platform(),
                        "memoryGiB": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                        "loadAverageAtStart": os.getloadavg(), **({"limits": open_files} if open_files else {})},
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
                if layout.main and gateway_modes:
                    warm = min(args.storm, args.gateway_chargers)  # the HTTP storm's chargers, their secrets verified
                    offset = await ocpp_gateway.measure(system, database_url, run, chargers=args.gateway_chargers, warm=warm,
                                                   minutes=args.gateway_minutes, samples=args.samples, concurrency=args.concurrency,
                                                   modes=gateway_modes, offset=offset, report=report, layout=layout.label,
                                                   profile=args.profile)
                    print(json.dumps({k: report[k] for k in ("gatewayStorm", "gatewayMemory") if k in report}), file=sys.stderr)
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
        report["correct"] = (all(r["correct"] for r in report["runs"]) and report.get("storm", {}).get("correct", True)
                             and all(report.get(k, {}).get("refused", 0) == 0 for k in ("gatewayStorm", "gatewayFirstConnection")))
        report["machine"]["loadAverageAtEnd"] = os.getloadavg()
        report["targets"] = targets(report, next((x.label for x in layouts_of(args) if x.main), ""))
        print(json.dumps(report, indent=2))
        print(json.dumps({"targets": report["targets"]}, indent=2), file=sys.stderr)
    finally:
        await drop_run(run)
    if not report["correct"]:
        sys.exit(1)


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()  # the load generator shares the machine: keep its own cost low
    except ImportError:
        pass
    asyncio.run(main())
