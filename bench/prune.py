"""`python -m bench.prune`: what the archive's retention prune costs at 1,000,000 archived events.
Fills a fresh database's archive in the server (not through the API) with events received over 60 days,
announces a horizon (nothing unsettled), and prunes with CPMS_ARCHIVE_RETENTION_DAYS=30: prints
rows deleted per second, each batch's time (what a concurrent write may wait behind), the plan the
batch uses, and the time of an archive insert before the prune and during it."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from aiohttp import web

from services.ingest import retention
from services.catalogue import SERVICES
from shared import db
from shared.app import POOL, SETTINGS
from shared.config import IngestSettings

PG = os.environ.get("CPMS_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432")
SPAN = timedelta(days=60)


async def fill(pool: asyncpg.Pool, rows: int) -> None:
    """`rows` archived events received evenly over the last 60 days, made by the server itself."""
    async with pool.acquire() as conn:
        await conn.execute(
            """
            INSERT INTO ingest.events (event_id, type, charge_point_id, ts, received_at, body)
            SELECT 'ev-' || i, 'MeterSample', 'CP-' || (i % 5000), t, t,
                   jsonb_build_object('type', 'MeterSample', 'chargePointId', 'CP-' || (i % 5000), 'transactionId', i)
            FROM generate_series(0, $1 - 1) AS i, LATERAL (SELECT now() - $2::interval + $2::interval * i / $1) AS r(t)
            """,
            rows, SPAN,
        )
        await conn.execute("ANALYZE ingest.events")
        await conn.execute("INSERT INTO ingest.retention_horizon (keep_from, announced_at) VALUES (now(), now())")


async def insert_seconds(pool: asyncpg.Pool, count: int = 200, *, until: asyncio.Task | None = None) -> list[float]:
    """Archive inserts of 10 events each, as the archive consumer makes them: `count` of them, or
    as many as fit until `until` is done."""
    times = []
    while (until is not None and not until.done()) or (until is None and len(times) < count):
        rows = [(uuid.uuid4().hex, "ChargerHeartbeat", "CP-LIVE", datetime.now(UTC), datetime.now(UTC), {}) for _ in range(10)]
        started = time.perf_counter()
        async with pool.acquire() as conn:
            await conn.executemany("INSERT INTO ingest.events (event_id, type, charge_point_id, ts, received_at, body) "
                                   "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING", rows)
        times.append(time.perf_counter() - started)
        await asyncio.sleep(0.005)
    return times


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"p50Ms": round(statistics.median(ordered) * 1000, 2),
            "p99Ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
            "maxMs": round(ordered[-1] * 1000, 2)}


async def main(rows: int, batch: int) -> dict:
    name = f"cpms_bench_prune_{uuid.uuid4().hex[:8]}"
    url = f"{PG}/{name}"
    await db.ensure_database(url)
    pool = await db.create_pool(url, max_size=4)
    try:
        spec = SERVICES["ingest"]
        await db.migrate(pool, spec.schema, spec.migrations)
        started = time.perf_counter()
        await fill(pool, rows)
        fill_seconds = time.perf_counter() - started
        app = web.Application()
        app[POOL] = pool
        app[SETTINGS] = IngestSettings.from_env({}, archive_retention_days=30, prune_batch_size=batch, prune_pause_seconds=0.05)

        async with pool.acquire() as conn:
            plan = await conn.fetchval(
                "EXPLAIN (FORMAT JSON) SELECT event_id FROM ingest.events WHERE received_at < now() - interval '30 days' "
                "ORDER BY received_at LIMIT $1", batch)
        before = await insert_seconds(pool)

        batches: list[float] = []
        original = retention.delete_in_batches

        async def timed(pool_, delete_batch, **kwargs):
            async def one(conn):
                t = time.perf_counter()
                try:
                    return await delete_batch(conn)
                finally:
                    batches.append(time.perf_counter() - t)
            return await original(pool_, one, **kwargs)

        retention.delete_in_batches = timed
        try:
            prune = asyncio.create_task(retention.prune_archive(app))
            started = time.perf_counter()
            during = await insert_seconds(pool, until=prune)
            deleted = await prune
            prune_seconds = time.perf_counter() - started
        finally:
            retention.delete_in_batches = original
        async with pool.acquire() as conn:
            left = await conn.fetchval("SELECT count(*) FROM ingest.events WHERE charge_point_id <> 'CP-LIVE'")
        node = json.loads(plan)[0]["Plan"] if isinstance(plan, str) else plan[0]["Plan"]
        while node.get("Plans") and node["Node Type"] == "Limit":
            node = node["Plans"][0]
        return {
            "archivedEvents": rows, "fillSeconds": round(fill_seconds, 1), "retentionDays": 30, "batchSize": batch,
            "deleted": deleted, "left": left, "pruneSeconds": round(prune_seconds, 2),
            "deletedPerSecond": round(deleted / prune_seconds) if prune_seconds else None,
            "batches": len(batches), "batch": percentiles(batches) if batches else None,
            "batchPlan": node["Node Type"] + (f" on {node['Index Name']}" if "Index Name" in node else ""),
            "archiveInsertBeforePrune": percentiles(before), "archiveInsertDuringPrune": percentiles(during),
        }
    finally:
        await pool.close()
        await db.drop_database(f"{PG}/{name}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=5000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.rows, args.batch)), indent=1))
