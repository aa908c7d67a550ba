"""The archive's retention (CPMS_ARCHIVE_RETENTION_DAYS, default: kept forever). An archived event
received longer ago than that is deleted, in batches by the receipt index, unless it came after
the horizon the sessions service announced (`retention.horizon`: events a session whose money is
not settled may still be asked about). Without a horizon heard, nothing is deleted."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
from aiohttp import web

from shared.app import POOL, SETTINGS
from shared.consumer import Message
from shared.domain import RetentionHorizon
from shared.metrics import PRUNED
from shared.periodic import delete_in_batches, every


async def record_horizon(conn: asyncpg.Connection, messages: list[Message]) -> None:
    """The newest announcement wins (by its `at`), whatever order they arrive in."""
    newest = max((RetentionHorizon.model_validate(m.body) for m in messages), key=lambda h: h.at)
    await conn.execute(
        """
        INSERT INTO ingest.retention_horizon AS h (id, keep_from, announced_at) VALUES (true, $1, $2)
        ON CONFLICT (id) DO UPDATE SET keep_from = EXCLUDED.keep_from, announced_at = EXCLUDED.announced_at
        WHERE EXCLUDED.announced_at > h.announced_at
        """,
        newest.keepFrom, newest.at,
    )


async def prune_archive(app: web.Application) -> int:
    settings = app[SETTINGS]
    async with app[POOL].acquire() as conn:
        keep_from = await conn.fetchval("SELECT keep_from FROM ingest.retention_horizon")
    if keep_from is None:
        return 0
    cutoff = min(datetime.now(UTC) - timedelta(days=settings.archive_retention_days), keep_from)

    async def batch(conn: asyncpg.Connection) -> int:
        deleted = await conn.fetchval(
            """
            WITH gone AS (
                DELETE FROM ingest.events WHERE event_id IN (
                    SELECT event_id FROM ingest.events WHERE received_at < $1 ORDER BY received_at LIMIT $2
                ) RETURNING 1
            ) SELECT count(*) FROM gone
            """,
            cutoff, settings.prune_batch_size,
        )
        PRUNED.labels("events").inc(deleted)
        return deleted

    return await delete_in_batches(app[POOL], batch, batch_size=settings.prune_batch_size,
                                   pause_seconds=settings.prune_pause_seconds)


TASKS = (
    every("ingest:archive-prune",
          lambda app: app[SETTINGS].prune_interval_seconds if app[SETTINGS].archive_retention_days else None, prune_archive),
)
