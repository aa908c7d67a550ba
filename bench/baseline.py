"""The machine's own limits for the same kinds of work, measured in the same run."""
from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator

import aio_pika
import asyncpg
import orjson

from bench.http_client import KeepAliveClient
from bench.system import free_port, process_cpu_seconds

DURATION = 3.0


@contextlib.asynccontextmanager
async def _rows_table(db: asyncpg.Pool | asyncpg.Connection) -> AsyncIterator[str]:
    """A table to write rows to for one measurement (its name), dropped after it."""
    await db.execute("CREATE TABLE IF NOT EXISTS public.bench_rows (id uuid PRIMARY KEY, body jsonb)")
    try:
        yield "public.bench_rows"
    finally:
        await db.execute("DROP TABLE public.bench_rows")


async def postgres_single_row_commits(database_url: str, concurrency: int = 8) -> float:
    """Commits/s of one-row transactions (what a naive consumer does per event)."""
    pool = await asyncpg.create_pool(database_url, min_size=concurrency, max_size=concurrency)
    async with _rows_table(pool) as table:
        count = 0
        stop = time.monotonic() + DURATION

        async def worker() -> None:
            nonlocal count
            async with pool.acquire() as conn:
                while time.monotonic() < stop:
                    await conn.execute(f"INSERT INTO {table} VALUES ($1, '{{}}')", uuid.uuid4())
                    count += 1

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        rate = count / (time.monotonic() - started)
    await pool.close()
    return rate


async def postgres_batched_rows(database_url: str, batch: int = 500) -> float:
    """Rows/s when rows are written a batch per transaction (what our consumers do)."""
    conn = await asyncpg.connect(database_url)
    async with _rows_table(conn) as table:
        count, stop, started = 0, time.monotonic() + DURATION, time.monotonic()
        while time.monotonic() < stop:
            async with conn.transaction():
                await conn.executemany(f"INSERT INTO {table} VALUES ($1, '{{}}')", [(uuid.uuid4(),) for _ in range(batch)])
            count += batch
        rate = count / (time.monotonic() - started)
    await conn.close()
    return rate


async def confirmed_publishes(amqp_url: str, concurrency: int = 32) -> float:
    """Persistent, confirmed publishes/s to a durable quorum queue."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        name = f"bench-baseline-{uuid.uuid4().hex[:8]}"
        await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})
        count, stop, started = 0, time.monotonic() + DURATION, time.monotonic()

        async def worker() -> None:
            nonlocal count
            while time.monotonic() < stop:
                await channel.default_exchange.publish(
                    aio_pika.Message(b'{"type":"ChargerHeartbeat"}', delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                    routing_key=name,
                )
                count += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        rate = count / (time.monotonic() - started)
        await channel.queue_delete(name)
    return rate


async def paced_confirm_latency(amqp_url: str, rate: float = 1000) -> dict[str, float]:
    """The broker's confirm time for persistent messages published one by one at `rate`/s to a
    durable quorum queue: the floor of ingest's latency at that rate (it answers after the confirm)."""
    connection = await aio_pika.connect(amqp_url)
    latencies: list[float] = []
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        name = f"bench-baseline-{uuid.uuid4().hex[:8]}"
        await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})

        async def publish() -> None:
            t0 = time.perf_counter()
            await channel.default_exchange.publish(
                aio_pika.Message(b'{"type":"ChargerHeartbeat"}', delivery_mode=aio_pika.DeliveryMode.PERSISTENT), routing_key=name)
            latencies.append(time.perf_counter() - t0)

        started, tasks = time.perf_counter(), []
        for i in range(int(rate * DURATION)):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(publish()))
        await asyncio.gather(*tasks)
        await channel.queue_delete(name)
    ordered = sorted(latencies)
    return {"p50Ms": round(ordered[len(ordered) // 2] * 1000, 2), "p99Ms": round(ordered[int(len(ordered) * 0.99)] * 1000, 2)}


async def publish_consume_round_trips(amqp_url: str, concurrency: int = 32) -> float:
    """Round trips/s: confirmed publish, consumed and acked on the other side."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        publisher = await connection.channel(publisher_confirms=True)
        consumer = await connection.channel()
        await consumer.set_qos(prefetch_count=256)
        name = f"bench-roundtrip-{uuid.uuid4().hex[:8]}"
        queue = await consumer.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})
        waiting: dict[str, asyncio.Future] = {}

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            await message.ack()
            future = waiting.pop(message.message_id, None)
            if future is not None and not future.done():
                future.set_result(None)

        consumer_tag = await queue.consume(on_message)
        count, stop, started = 0, time.monotonic() + DURATION, time.monotonic()

        async def worker() -> None:
            nonlocal count
            loop = asyncio.get_running_loop()
            while time.monotonic() < stop:
                message_id = uuid.uuid4().hex
                arrived = waiting[message_id] = loop.create_future()
                await publisher.default_exchange.publish(
                    aio_pika.Message(b"{}", message_id=message_id, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                    routing_key=name,
                )
                await arrived
                count += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        rate = count / (time.monotonic() - started)
        await queue.cancel(consumer_tag)
        await consumer.queue_delete(name)
    return rate


async def bare_http(event: dict, concurrency: int = 32) -> tuple[float, float]:
    """Requests/s and server CPU ms per request of the HTTP framework alone (`bench.bare_http`),
    sent single events by the load generator's own client, as many in flight as the single-event
    run: the floor of ingest's cost per request."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "bench.bare_http", str(port)], stderr=subprocess.DEVNULL)
    client = KeepAliveClient(f"http://127.0.0.1:{port}", concurrency)
    body, headers = orjson.dumps(event), {"Content-Type": "application/json"}
    try:
        for _ in range(100):  # until it listens
            try:
                await client.request("POST", "/v1/gateway/events", body, headers)
                break
            except OSError:
                await asyncio.sleep(0.1)
        count, cpu_before = 0, process_cpu_seconds(server.pid)
        stop, started = time.monotonic() + DURATION, time.monotonic()

        async def worker() -> None:
            nonlocal count
            while time.monotonic() < stop:
                status, _ = await client.request("POST", "/v1/gateway/events", body, headers)
                if status != 202:
                    raise RuntimeError(f"bare HTTP server answered {status}")
                count += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds, cpu = time.monotonic() - started, process_cpu_seconds(server.pid) - cpu_before
        return count / seconds, cpu / count * 1000
    finally:
        await client.close()
        server.terminate()
        server.wait(timeout=10)


async def measure(database_url: str, amqp_url: str, event: dict) -> dict:
    requests_per_second, cpu_ms_per_request = await bare_http(event)
    return {
        "postgresSingleRowCommitsPerSecond": round(await postgres_single_row_commits(database_url)),
        "postgresBatchedRowsPerSecond": round(await postgres_batched_rows(database_url)),
        "confirmedPublishesPerSecond": round(await confirmed_publishes(amqp_url)),
        "confirmLatencyAt1000PerSecond": await paced_confirm_latency(amqp_url),
        "publishConsumeRoundTripsPerSecond": round(await publish_consume_round_trips(amqp_url)),
        "bareHttpRequestsPerSecond": round(requests_per_second),
        "bareHttpServerCpuMsPerRequest": round(cpu_ms_per_request, 4),
    }
