"""Memory against the size of the fleet: boots and connector statuses of many more chargers (sent
in batches), then every process's peak RSS beside what it was before. The state of a charger
lives in Postgres, so a process's memory must not grow with their number."""
from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import asyncpg

from bench.load import SendResult, Sender, send_batches
from bench.storm import reconnect_events


async def grow_fleet(ingest_url: str, api_key: str, database_url: str, run: str, chargers: int, *, batch: int = 100) -> dict:
    at = datetime.now(UTC).replace(microsecond=0)
    plans = [reconnect_events(f"FLEET-{run}-{i:06d}", at) for i in range(chargers)]
    sender = Sender(ingest_url, api_key, 64)
    sent = SendResult()
    try:
        await send_batches(sender, plans, batch, 8, sent)
    finally:
        await sender.close()
    conn = await asyncpg.connect(database_url)
    try:
        deadline = time.perf_counter() + 600
        while await conn.fetchval("SELECT count(*) FROM sessions.chargers WHERE charge_point_id LIKE $1", f"FLEET-{run}-%") < chargers:
            if time.perf_counter() > deadline:
                raise TimeoutError("the fleet's boots were not applied within 600 s")
            await asyncio.sleep(0.5)
        in_tables = await conn.fetchval("SELECT count(*) FROM sessions.chargers")
    finally:
        await conn.close()
    return {"chargersAdded": chargers, "chargersInTables": in_tables, "events": sent.events,
            "acceptedEventsPerSecond": round(sent.events / sent.seconds)}
