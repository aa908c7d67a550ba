"""The archive's retention (CPMS_ARCHIVE_RETENTION_DAYS, default: kept forever). An archived event
received longer ago than that is deleted, in batches by the receipt index, unless it came after
the horizon the sessions service announced (`retention.horizon`: events a session whose money is
not settled may still be asked about). Without a horizon heard, nothing is deleted."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
from aiohttp import web

from services.ingest import store
from shared.app import POOL, SETTINGS
from shared.consumer import Message
from shared.domain import RetentionHorizon
from shared.metrics import PRUNED
from shared.periodic import delete_in_batches, every


async def record_horizon(conn: asyncpg.Connection, messages: list[Message]) -> None:
    """The newest announcement wins (by its `at`), whatever order they arrive in."""
    await store.record_horizon(conn, max((RetentionHorizon.model_validate(m.body) for m in messages), key=lambda h: h.at))


async def prune_archive(app: web.Application) -> int:
    settings = app[SETTINGS]
    async with app[POOL].acquire() as conn:
        keep_from = await store.retention_horizon(conn)
    if keep_from is None:
        return 0
    cutoff = min(datetime.now(UTC) - timedelta(days=settings.archive_retention_days), keep_from)

    async def batch(conn: asyncpg.Connection) -> int:
        deleted = await store.prune_archive(conn, received_before=cutoff, limit=settings.prune_batch_size)
        PRUNED.labels("events").inc(deleted)
        return deleted

    return await delete_in_batches(app[POOL], batch, batch_size=settings.prune_batch_size,
                                   pause_seconds=settings.prune_pause_seconds)


TASKS = (
    every("ingest:archive-prune",
          lambda app: app[SETTINGS].prune_interval_seconds if app[SETTINGS].archive_retention_days else None, prune_archive),
)
