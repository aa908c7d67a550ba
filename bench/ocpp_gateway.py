"""The CPMS's own OCPP 1.6J gateway under load (`--modes gateway-storm,gateway-connected,gateway-chain`),
each figure beside the HTTP path of the same run: the same events POSTed straight to ingest, one
per request, as the reference gateway does.

`cpms run gateway` runs as a process of its own in front of the system under test, so its CPU and
memory are its own. N registered chargers (the storm's: bench/storm.py) connect to it, one
WebSocket each (bench/ocpp_charger.py), and stay connected through every mode:
- storm: they reconnect, 64 at a time, each with its Basic auth handshake and BootNotification;
- memory: the gateway's RSS with them idle, less its RSS with none, per connection; beside it
  ingest's for as many idle keep-alive HTTP connections;
- connected: for M minutes, every charger on its own clock sends MeterValues every 60 s and
  charges once (StartTransaction, StopTransaction and their statuses);
- chain: every charger plays one whole session as fast as it is answered, 32 chargers at a time
  (the single-event load's shape).
Every session of both paths is priced, settled and checked (bench/chain.py)."""
from __future__ import annotations

import asyncio
import gc
import os
import resource
import time
from collections import deque
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import aiohttp
import asyncpg

from bench import storm
from bench.chain import API_KEY, measure_chain
from bench.http_client import KeepAliveClient
from bench.load import Charger, SendResult, Sender, events_of, make_chargers, percentiles, play_in_turn, play_on_time, send_single
from bench.ocpp_charger import RESENDS, ChargerSocket, Refused
from bench.system import System, rss_bytes

MODES = ("gateway-storm", "gateway-connected", "gateway-chain")
SETTLE_SECONDS = 5.0  # before memory is read: the connections' own events delivered, buffers freed
FILES_BESIDE_SOCKETS = 1024  # what a process opens besides one socket per charger


def open_files_limits(chargers: int) -> dict:
    """Raise this process's open-files limit to its hard limit; the processes it starts (the
    gateway, the CPMS) inherit it. Each side of N connections needs N descriptors; the kernel's
    limits are reported beside it."""
    def kernel(name: str) -> str:
        with open(f"/proc/sys/{name}") as f:
            return " ".join(f.read().split())

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = int(kernel("fs/nr_open"))  # the most a process may have
    if hard < chargers + FILES_BESIDE_SOCKETS:
        raise SystemExit(f"{chargers} chargers need an open-files limit of {chargers + FILES_BESIDE_SOCKETS}; "
                         f"the hard limit is {hard} (ulimit -Hn): raise it, or pass fewer --gateway-chargers")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    return {"openFilesSoftBefore": soft, "openFiles": hard, "fsFileMax": kernel("fs/file-max"), "fsNrOpen": kernel("fs/nr_open"),
            "localPortRange": kernel("net/ipv4/ip_local_port_range"), "somaxconn": kernel("net/core/somaxconn")}


async def start_gateway(system: System) -> str:
    """`cpms run gateway` in front of the system's ingest, one process; its ws:// URL once ready."""
    system.start("gateway", env={"CPMS_BASE_URL": system.base_url("ingest"), "CPMS_WORKERS": "1"})
    await system.wait_ready()
    return system.base_url("gateway").replace("http://", "ws://")


async def connected_chargers(system: System) -> float:
    """The gateway's own count (its metric `cpms_gateway_connected_chargers`)."""
    async with aiohttp.ClientSession() as http, http.get(system.base_url("gateway") + "/metrics") as r:
        text = await r.text()
        if r.status != 200:
            raise RuntimeError(f"the gateway's /metrics answered {r.status}: {text[:200]}")
    for line in text.splitlines():
        if line.startswith("cpms_gateway_connected_chargers "):
            return float(line.rsplit(" ", 1)[1])
    raise RuntimeError("the gateway's /metrics has no cpms_gateway_connected_chargers")


async def until_connected(system: System, expected: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while await connected_chargers(system) != expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the gateway does not count {expected} connected chargers after {timeout} s")
        await asyncio.sleep(0.5)


class Fleet:
    """The chargers' sockets, in the order of `chargers` ((chargePointId, secret) each)."""

    def __init__(self, url: str, chargers: list[tuple[str, str]]) -> None:
        self.url, self.chargers = url, chargers
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        self.sockets: list[ChargerSocket | None] = [None] * len(chargers)

    def socket(self, i: int) -> ChargerSocket:
        socket = self.sockets[i]
        if socket is None or socket.closed:
            raise ConnectionError(f"{self.chargers[i][0]} is not connected")
        return socket

    async def connect(self, which: range, in_flight: int = storm.IN_FLIGHT) -> dict:
        """Each charger of `which`: the handshake, then its BootNotification answered; `in_flight`
        chargers at a time, each timed from its first attempt."""
        waiting = deque(which)
        handshakes: list[float] = []
        boots = SendResult()
        totals: list[float] = []
        counts = {"refused": 0, "retried": 0}
        at = datetime.now(UTC)

        async def charger() -> None:
            while waiting:
                i = waiting.popleft()
                cp, secret = self.chargers[i]
                started = time.perf_counter()
                socket = await self._handshake(cp, secret, counts)
                if socket is None:
                    counts["refused"] += 1
                    continue
                handshakes.append(time.perf_counter() - started)
                self.sockets[i] = socket
                await socket.send(storm.reconnect_events(cp, at)[0], boots)
                totals.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(charger() for _ in range(in_flight)))
        answered = time.perf_counter() - started
        return {"chargers": len(which), "inFlight": in_flight, "answeredSeconds": round(answered, 1),
                "chargersPerSecond": round(len(which) / answered), "handshake": percentiles(handshakes),
                "boot": percentiles(boots.latencies), "handshakeAndBoot": percentiles(totals),
                "bootsResent": boots.failures, **counts}

    async def _handshake(self, cp: str, secret: str, counts: dict[str, int]) -> ChargerSocket | None:
        for _ in range(RESENDS):
            try:
                return await ChargerSocket.connect(self.http, self.url, cp, secret)
            except Refused:
                return None
            except aiohttp.WSServerHandshakeError as refused:  # 429 or 503: wait as told, as a charger does
                pause = float((refused.headers or {}).get("Retry-After", 1))
            except aiohttp.ClientConnectionError:
                pause = 1.0
            counts["retried"] += 1
            await asyncio.sleep(min(pause, 10.0))
        raise RuntimeError(f"{cp} could not connect after {RESENDS} attempts")

    async def disconnect(self) -> None:
        await asyncio.gather(*(s.close() for s in self.sockets if s is not None))
        self.sockets = [None] * len(self.chargers)

    async def close(self) -> None:
        await self.disconnect()
        await self.http.close()


async def boots_applied(database_url: str, run: str, since: datetime, expected: int, timeout: float = 600) -> float:
    """When the sessions service holds a boot of `since` or later for each of the storm's chargers."""
    conn = await asyncpg.connect(database_url)
    try:
        deadline = time.perf_counter() + timeout
        while await conn.fetchval("SELECT count(*) FROM sessions.chargers WHERE charge_point_id LIKE $1 AND booted_at >= $2",
                                  f"STORM-{run}-%", since) < expected:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"the storm's boots were not applied after {timeout} s")
            await asyncio.sleep(0.1)
        return time.perf_counter()
    finally:
        await conn.close()


def generator_rss() -> int:
    gc.collect()
    return rss_bytes(os.getpid(), "VmRSS")


async def ingest_idle_memory(system: System, connections: int) -> dict:
    """The HTTP path's figure: ingest's RSS (every worker of its process) with `connections` idle
    keep-alive connections, less without them, per connection."""
    ingest = next(p for p in system.processes if p.name in ("ingest", "all"))
    before = ingest.rss_bytes()
    client = KeepAliveClient(system.base_url("ingest"), connections)
    try:
        await client.hold(connections, "/livez")
        await asyncio.sleep(SETTLE_SECONDS)
        after = ingest.rss_bytes()
    finally:
        await client.close()
    return {"process": ingest.name, "connections": connections, "rssBytesWithout": before, "rssBytesWith": after,
            "rssKiBPerIdleConnection": round((after - before) / connections / 1024, 1)}


def on_their_clocks(chargers: list[Charger], minutes: int, start: datetime) -> list[list[tuple[float, dict]]]:
    """Each charger's calls for `minutes` (at least 2) as (seconds after `start`, event): MeterValues
    every 60 s, the first outside a transaction, and one transaction (Preparing and
    StartTransaction 20 s after the first, StopTransaction and Available 40 s after the last).
    The chargers' minutes begin spread evenly over the first one."""
    plans = []
    for i, c in enumerate(chargers):
        phase = 60 * i / len(chargers)
        cp, tx = c.charge_point_id, c.transaction_id

        def at(seconds: float) -> tuple[float, str]:
            when = phase + seconds
            return when, (start + timedelta(seconds=when)).isoformat(timespec="milliseconds").replace("+00:00", "Z")

        def sample(k: int, in_transaction: bool) -> dict:
            when, ts = at(60 * k)
            event = {"type": "MeterSample", "chargePointId": cp, "ts": ts, "connectorId": 1,
                     "samples": [{"value": str(c.meter_start_wh + c.energy_wh * k // minutes), "context": "Sample.Periodic"}]}
            return {**event, "transactionId": tx} if in_transaction else event

        stop = 60 * (minutes - 1) + 40
        plan = [
            (at(0)[0], sample(0, False)),
            (at(20)[0], {"type": "ConnectorStatusChanged", "chargePointId": cp, "ts": at(20)[1], "connectorId": 1,
                         "status": "Preparing", "errorCode": "NoError"}),
            (at(21)[0], {"type": "TransactionStarted", "chargePointId": cp, "ts": at(21)[1], "connectorId": 1,
                         "transactionId": tx, "idTag": "BENCH", "meterStartWh": c.meter_start_wh}),
            *((at(60 * k)[0], sample(k, True)) for k in range(1, minutes)),
            (at(stop)[0], {"type": "TransactionEnded", "chargePointId": cp, "ts": at(stop)[1], "transactionId": tx,
                           "meterStopWh": c.meter_start_wh + c.energy_wh, "reason": "Local", "idTag": "BENCH"}),
            (at(stop + 1)[0], {"type": "ConnectorStatusChanged", "chargePointId": cp, "ts": at(stop + 1)[1], "connectorId": 1,
                               "status": "Available", "errorCode": "NoError"}),
        ]
        plans.append(plan)
    return plans


async def through_gateway(fleet: Fleet, chargers: list[Charger], plans: list, sent: SendResult, *, on_time: bool,
                          concurrency: int) -> list[Charger]:
    """The plans as OCPP calls, charger i's over its own socket; the chargers with the transaction
    ids the CPMS gave them."""
    def send(i: int, event: dict):
        return fleet.socket(i).send(event, sent)

    await (play_on_time(send, plans, sent) if on_time else play_in_turn(send, plans, concurrency, sent))
    return [replace(c, transaction_id=fleet.socket(i).transaction_id) for i, c in enumerate(chargers)]


async def through_http(ingest_url: str, plans: list, sent: SendResult, *, on_time: bool, concurrency: int) -> None:
    """The plans as the reference gateway posts them: one event a request, straight to ingest."""
    sender = Sender(ingest_url, API_KEY, 256 if on_time else max(concurrency, 64))
    try:
        await (play_on_time(lambda _, event: sender.post(event, sent), plans, sent) if on_time
               else send_single(sender, plans, concurrency, sent))
    finally:
        await sender.close()


async def storm_and_memory(system: System, database_url: str, run: str, fleet: Fleet, *, warm: int, report: dict) -> dict:
    """Connect the fleet (first the chargers ingest never verified, on a gateway then replaced), then
    the storm itself on a gateway with no charger; the storm's figures, and the gateway's memory in
    the report."""
    chargers = len(fleet.chargers)
    if warm < chargers:
        # a scrypt each in ingest, as after a restart of the CPMS; then a gateway of its own for the
        # storm, whose memory holds no trace of these connections
        report["gatewayFirstConnection"] = await fleet.connect(range(warm, chargers))
        await fleet.disconnect()
        system.stop("gateway")
        await start_gateway(system)
    await fleet.connect(range(1))  # the code paths of a charger's visit, run once
    await fleet.disconnect()
    await until_connected(system, 0)
    await asyncio.sleep(SETTLE_SECONDS)
    gateway = system.process("gateway")
    without = gateway.rss_bytes()

    since, started = datetime.now(UTC), time.perf_counter()
    reconnect = await fleet.connect(range(chargers))
    reconnect["appliedSeconds"] = round(await boots_applied(database_url, run, since, chargers) - started, 1)
    await until_connected(system, chargers)
    await asyncio.sleep(SETTLE_SECONDS)
    with_them = gateway.rss_bytes()
    report["gatewayMemory"]["gateway"] = {"rssBytesWithout": without, "rssBytesWith": with_them,
                                          "rssKiBPerIdleConnection": round((with_them - without) / chargers / 1024, 1)}
    return reconnect


async def measure(system: System, database_url: str, run: str, *, chargers: int, warm: int, minutes: int, samples: int,
                  concurrency: int, modes: list[str], offset: int, report: dict, layout: str, profile: str | None) -> int:
    """Every gateway mode of `modes` on this system; returns the next free charger offset.
    `warm`: how many of the storm's chargers ingest has verified already (the HTTP storm's)."""
    fleet_chargers = await storm.register(database_url, run, chargers, registered=warm)
    # the HTTP path's memory first: the load generator holds one side of every connection, and
    # its open-files limit is for the chargers' sockets or these, not both
    report["gatewayMemory"] = {"connections": chargers, "ingest": await ingest_idle_memory(system, chargers)}
    fleet = Fleet(await start_gateway(system), fleet_chargers)
    try:
        reconnect = await storm_and_memory(system, database_url, run, fleet, warm=warm, report=report)
        # the load generator's own memory, all its chargers connected (a figure of the generator,
        # not of the CPMS: what else it did in this run stays in it)
        report["gatewayMemory"]["generatorRssBytes"] = generator_rss()
        if "gateway-storm" in modes:
            report["gatewayStorm"] = {**reconnect, "layout": layout}

        loads = []
        if "gateway-connected" in modes:
            loads.append(("gateway-connected", lambda made: on_their_clocks(made, minutes, datetime.now(UTC)), True,
                          {"minutes": minutes}))
        if "gateway-chain" in modes:
            loads.append(("gateway-chain", lambda made: [events_of(c, samples, datetime.now(UTC)) for c in made], False,
                          {"concurrency": concurrency}))
        gateway_chargers = make_chargers(run, chargers, prefix="STORM")
        for mode, plans_of, on_time, shape in loads:
            result = await measure_chain(
                system, database_url, gateway_chargers, plans_of,
                lambda plans, sent, t=on_time: through_gateway(fleet, gateway_chargers, plans, sent, on_time=t, concurrency=concurrency),
                latency="callLatency", profile=profile, label=mode)
            result["gatewayCpuMsPerCall"] = round(result["cpuSecondsByProcess"]["gateway"] / result["events"] * 1000, 4)
            report["runs"].append({"mode": mode, "layout": layout, **shape, **result, "peakRssBytes": system.peak_rss()})
            result = await measure_chain(
                system, database_url, make_chargers(run, chargers, offset), plans_of,
                lambda plans, sent, t=on_time: through_http(system.base_url("ingest"), plans, sent, on_time=t, concurrency=concurrency),
                leave_out=("gateway",), profile=profile, label=f"{mode}-http")
            offset += chargers
            report["runs"].append({"mode": f"{mode}-http", "layout": layout, **shape, **result, "peakRssBytes": system.peak_rss()})
        report["gatewayCommandsReceived"] = sum(s.unsolicited for s in fleet.sockets if s is not None)
    finally:
        await fleet.close()
        system.stop("gateway")
    return offset
