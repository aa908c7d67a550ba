"""The load: N chargers, each played through the reference gateway's exact event JSON, and the
sessions, energies and amounts the CPMS must come up with for them."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import orjson

from bench.http_client import KeepAliveClient

PRICE_PER_KWH = Decimal("0.30")
REQUEST_TIMEOUT = 60.0  # a hung CPMS fails the run instead of hanging it
GATEWAY_TIMEOUT = 8.0  # the reference gateway's HTTP client gives up after 8 s, and the event with it


@dataclass(frozen=True)
class Charger:
    charge_point_id: str
    transaction_id: int
    meter_start_wh: int
    energy_wh: int

    @property
    def expected_cost(self) -> Decimal:
        return (Decimal(self.energy_wh) / 1000 * PRICE_PER_KWH).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def make_chargers(run: str, n: int, offset: int = 0, *, prefix: str = "BENCH") -> list[Charger]:
    return [
        Charger(f"{prefix}-{run}-{i:06d}", 1 + i % 97, (i * 7919) % 500_000, 1_000 + (i * 104_729) % 60_000)
        for i in range(offset, offset + n)
    ]


def events_of(charger: Charger, samples: int, start: datetime) -> list[dict]:
    """boot, status, start, K samples, end, status: what a charger sends for one session."""
    cp, tx = charger.charge_point_id, charger.transaction_id

    def ts(seconds: float) -> str:
        return (start + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")

    events: list[dict] = [
        {"type": "ChargerBooted", "chargePointId": cp, "ts": ts(0), "vendor": "Bench", "model": "B1", "firmwareVersion": "1.0", "ocppVersion": "1.6"},
        {"type": "ConnectorStatusChanged", "chargePointId": cp, "ts": ts(0.1), "connectorId": 1, "status": "Preparing", "errorCode": "NoError"},
        {"type": "TransactionStarted", "chargePointId": cp, "ts": ts(1), "connectorId": 1, "transactionId": tx, "idTag": "BENCH"},
    ]
    if charger.meter_start_wh:
        events[-1]["meterStartWh"] = charger.meter_start_wh
    for k in range(1, samples + 1):
        reading = charger.meter_start_wh + charger.energy_wh * k // (samples + 1)
        events.append({"type": "MeterSample", "chargePointId": cp, "ts": ts(1 + k), "transactionId": tx, "connectorId": 1,
                       "samples": [{"value": str(reading), "context": "Sample.Periodic"}]})
    events.append({"type": "TransactionEnded", "chargePointId": cp, "ts": ts(2 + samples), "transactionId": tx,
                   "meterStopWh": charger.meter_start_wh + charger.energy_wh, "reason": "Local", "idTag": "BENCH"})
    events.append({"type": "ConnectorStatusChanged", "chargePointId": cp, "ts": ts(2.1 + samples), "connectorId": 1, "status": "Available", "errorCode": "NoError"})
    return events


@dataclass
class SendResult:
    latencies: list[float] = field(default_factory=list)
    events: int = 0
    failures: int = 0
    started: float = 0.0
    finished: float = 0.0
    ended_accepted_at: dict[str, datetime] = field(default_factory=dict)
    # As the reference gateway posts (`Sender.post_once`): the events it would have dropped for good.
    lost: int = 0
    connection_errors: int = 0  # of them, no answer at all: refused, dropped or past GATEWAY_TIMEOUT
    timeouts: int = 0  # of those, past GATEWAY_TIMEOUT

    def accepted(self, events: list[dict] | dict) -> None:
        """Count a 2xx, and when each TransactionEnded was accepted, for the end-to-end lag."""
        events = events if isinstance(events, list) else [events]
        self.events += len(events)
        accepted_at = datetime.now(UTC)
        for event in events:
            if event["type"] == "TransactionEnded":
                self.ended_accepted_at[event["chargePointId"]] = accepted_at

    @property
    def seconds(self) -> float:
        return self.finished - self.started


class Sender:
    def __init__(self, ingest_url: str, api_key: str, connections: int, *, new_connection_per_request: bool = False) -> None:
        self.client = KeepAliveClient(ingest_url, connections, reuse=not new_connection_per_request)
        self.headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}

    async def post(self, events: list[dict] | dict, result: SendResult) -> bool:
        """One request (an event, or a batch); retried on 503 or a dropped connection, so that every
        event gets through and the run measures the CPMS, not the losses."""
        body = orjson.dumps(events)
        for _ in range(20):
            t0 = time.perf_counter()
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    status, reply = await self.client.request("POST", "/v1/gateway/events", body, self.headers)
            except TimeoutError:
                raise RuntimeError(f"ingest did not answer within {REQUEST_TIMEOUT} s") from None
            except ConnectionError:
                result.failures += 1
                await asyncio.sleep(0.1)
                continue
            result.latencies.append(time.perf_counter() - t0)
            if status == 202:
                result.accepted(events)
                return True
            result.failures += 1
            if status != 503:
                raise RuntimeError(f"ingest answered {status}: {reply.decode(errors='replace')}")
            await asyncio.sleep(0.1)
        return False

    async def post_once(self, event: dict, result: SendResult) -> None:
        """One request as the reference gateway makes it: one try, GATEWAY_TIMEOUT at most; an
        event that gets no 2xx is lost (the gateway tells the charger it was accepted anyway)."""
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(GATEWAY_TIMEOUT):
                status, _ = await self.client.request("POST", "/v1/gateway/events", orjson.dumps(event), self.headers)
        except OSError as exc:  # refused, reset, or TimeoutError
            result.lost += 1
            result.connection_errors += 1
            result.timeouts += isinstance(exc, TimeoutError)
            return
        result.latencies.append(time.perf_counter() - t0)
        if 200 <= status < 300:
            result.accepted(event)
        else:
            result.lost += 1

    async def close(self) -> None:
        await self.client.close()


# How one event of charger number i reaches the CPMS: a POST to ingest, or a call over its WebSocket.
Send = Callable[[int, dict], Awaitable[object]]


async def send_single(sender: Sender, plans: list[list[dict]], concurrency: int, result: SendResult, *,
                      as_the_gateway: bool = False) -> None:
    """Each worker plays one charger at a time, one request per event, in order (as the gateway does).
    `as_the_gateway`: each event is posted once, and one that gets no 2xx is lost (`Sender.post_once`)."""
    post = sender.post_once if as_the_gateway else sender.post
    await play_in_turn(lambda _, event: post(event, result), plans, concurrency, result)


async def play_in_turn(send: Send, plans: list[list[dict]], concurrency: int, result: SendResult) -> None:
    """`concurrency` workers, each playing one charger's events at a time, in order, each sent
    once the one before it was answered."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(plans)):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            for event in plans[i]:
                await send(i, event)

    result.started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.finished = time.perf_counter()


async def play_on_time(send: Send, schedules: list[list[tuple[float, dict]]], result: SendResult) -> None:
    """Every charger at once, each sending its events at their times (seconds after the start),
    and never before the one before it was answered: chargers on their own clocks, as in the field."""
    async def charger(i: int) -> None:
        for at, event in schedules[i]:
            delay = result.started + at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await send(i, event)

    result.started = time.perf_counter()
    await asyncio.gather(*(charger(i) for i in range(len(schedules))))
    result.finished = time.perf_counter()


async def send_paced(sender: Sender, plans: list[list[dict]], rate: float, result: SendResult) -> None:
    """Open loop at a fixed rate of events/s (per-charger order kept): latency under a steady load."""
    events = [e for group in zip(*plans, strict=False) for e in group]  # interleave chargers, keep each one's order
    interval = 1.0 / rate
    result.started = time.perf_counter()
    tasks = []
    for i, event in enumerate(events):
        delay = result.started + i * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(sender.post(event, result)))
    await asyncio.gather(*tasks)
    result.finished = time.perf_counter()


async def send_batches(sender: Sender, plans: list[list[dict]], batch_size: int, concurrency: int, result: SendResult) -> None:
    """Batches of events (chargers' events interleaved, each charger's order kept across batches)."""
    events = [e for group in zip(*plans, strict=False) for e in group]
    batches = [events[i:i + batch_size] for i in range(0, len(events), batch_size)]
    queue: asyncio.Queue[list[dict]] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)

    async def worker() -> None:
        while not queue.empty():
            await sender.post(queue.get_nowait(), result)

    result.started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.finished = time.perf_counter()


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {"p50Ms": at(0.50), "p99Ms": at(0.99), "maxMs": round(ordered[-1] * 1000, 2)}
