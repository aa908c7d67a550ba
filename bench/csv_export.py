"""`python -m bench.csv_export`: how fast `GET /v1/sessions` with `Accept: text/csv` streams, and
that its memory does not grow with the rows. Fills a fresh database with sessions by COPY (not
through the API), starts `cpms run sessions`, exports a tenth of them and then all of them, and
prints rows/s and the process's peak RSS after each (the peak only grows, so a bounded export
shows nearly the same peak for both)."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import aiohttp

from bench.system import System, rss_bytes
from shared import db
from services.catalogue import SERVICES

PG = os.environ.get("CPMS_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432")
AMQP = os.environ.get("CPMS_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
ADMIN = "bench-admin-token"


async def fill(database_url: str, rows: int) -> None:
    """`rows` finalized sessions: a tenth on charger CSV-A, the rest on CSV-B."""
    pool = await db.create_pool(database_url, max_size=2)
    try:
        for name in ("sessions",):
            spec = SERVICES[name]
            await db.migrate(pool, spec.schema, spec.migrations)
        start = datetime(2026, 11, 1, tzinfo=UTC)
        records = [
            ("CSV-A" if i < rows // 10 else "CSV-B", i, start + timedelta(seconds=i), start + timedelta(seconds=i), 1,
             "RFID-0001", 1000, start + timedelta(seconds=i, minutes=30), 12345 + i, "Finalized", Decimal(11345 + i),
             "StopTransaction", start + timedelta(seconds=i, minutes=31))
            for i in range(rows)
        ]
        async with pool.acquire() as conn:
            await conn.copy_records_to_table(
                "sessions", schema_name="sessions", records=records,
                columns=["charge_point_id", "transaction_id", "first_seen_at", "started_at", "connector_id", "id_tag",
                         "meter_start_wh", "ended_at", "meter_stop_wh", "status", "energy_wh", "energy_source", "finalized_at"])
            await conn.execute("ANALYZE sessions.sessions")
    finally:
        await pool.close()


async def export(http: aiohttp.ClientSession, sessions_url: str, pid: int, query: str) -> dict:
    started = time.perf_counter()
    lines = 0
    async with http.get(f"{sessions_url}/v1/sessions{query}",
                        headers={"Authorization": f"Bearer {ADMIN}", "Accept": "text/csv"}) as response:
        assert response.status == 200, await response.text()
        async for _ in response.content:
            lines += 1
    seconds = time.perf_counter() - started
    return {"rows": lines - 1, "seconds": round(seconds, 2), "rowsPerSecond": round((lines - 1) / seconds),
            "peakRssMiB": round(rss_bytes(pid, "VmHWM") / 2**20, 1)}


async def main(rows: int) -> dict:
    run = uuid.uuid4().hex[:8]
    database_url = f"{PG}/cpms_bench_csv_{run}"
    await db.ensure_database(database_url)
    system = System({**os.environ, "CPMS_DATABASE_URL": database_url, "CPMS_AMQP_URL": AMQP,
                     "CPMS_AMQP_PREFIX": f"bench-csv-{run}", "CPMS_ADMIN_TOKEN": ADMIN, "CPMS_LOG_LEVEL": "WARNING"})
    try:
        await fill(database_url, rows)
        system.start("sessions")
        await system.wait_ready()
        pid = system.processes[0].popen.pid
        ready = round(rss_bytes(pid, "VmHWM") / 2**20, 1)
        async with aiohttp.ClientSession() as http:
            tenth = await export(http, system.base_url("sessions"), pid, "?chargePointId=CSV-A")
            whole = await export(http, system.base_url("sessions"), pid, "")
        assert tenth["rows"] == rows // 10 and whole["rows"] == rows, (tenth, whole)
        return {"rows": rows, "peakRssMiBWhenReady": ready, "tenth": tenth, "all": whole,
                "peakRssGrowthMiBFromTenthToAll": round(whole["peakRssMiB"] - tenth["peakRssMiB"], 1)}
    finally:
        system.stop()
        await db.drop_database(f"{PG}/cpms_bench_csv_{run}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.csv_export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    report = asyncio.run(main(parser.parse_args().rows))
    json.dump(report, sys.stdout, indent=1)
    print()
