"""What the sessions service lets go, and what it tells ingest it still needs.

- Meter samples (CPMS_SAMPLE_RETENTION_DAYS, default: kept forever): a session finalized that
  long ago whose money is settled (Confirmed) or that was never priced gives up its samples all at
  once, and its finalization is frozen from then on (a late event can no longer re-derive it from
  half its samples). A session Active, or whose settlement is Pending, Submitted or Failed, keeps
  every sample: its energy may still be derived again and billed.
- The archive's horizon: every round, `retention.horizon` names the oldest moment a session whose
  money is not settled still started at (a day earlier, for chargers' clocks); ingest never prunes
  an archived event received after it."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
from aiohttp import web

from services.sessions import store
from shared.app import POOL, SETTINGS, unit_of_work
from shared.domain import RetentionHorizon, SettlementStatus
from shared.outbox import enqueue_domain
from shared.metrics import PRUNED
from shared.periodic import delete_in_batches, every

CLOCK_MARGIN = timedelta(days=1)
UNPRICED_GRACE = timedelta(days=1)  # a session finalized without a settlement may still be priced: billing lags

UNSETTLED = (SettlementStatus.PENDING, SettlementStatus.SUBMITTED, SettlementStatus.FAILED)


async def horizon(conn: asyncpg.Connection) -> datetime:
    oldest = await store.retention.oldest_holding_start(conn, unpriced_grace=UNPRICED_GRACE, unsettled=UNSETTLED)
    now = datetime.now(UTC)
    return min(oldest, now) - CLOCK_MARGIN if oldest is not None else now - CLOCK_MARGIN


async def announce_horizon(app: web.Application) -> None:
    async with unit_of_work(app, store.SCHEMA) as conn:
        keep_from = await horizon(conn)
        await enqueue_domain(conn, store.SCHEMA, RetentionHorizon(keepFrom=keep_from, at=datetime.now(UTC)))


async def prune_samples(app: web.Application) -> int:
    settings = app[SETTINGS]
    cutoff = datetime.now(UTC) - timedelta(days=settings.sample_retention_days)

    async def batch(conn: asyncpg.Connection) -> int:
        sessions, samples = await store.retention.prune_samples(
            conn, finalized_before=cutoff, unpriced_grace=UNPRICED_GRACE, unsettled=UNSETTLED, limit=settings.prune_batch_size)
        if sessions:
            PRUNED.labels("meter_samples").inc(samples)
        return sessions

    return await delete_in_batches(app[POOL], batch, batch_size=settings.prune_batch_size,
                                   pause_seconds=settings.prune_pause_seconds)


def _interval(app: web.Application) -> float:
    return app[SETTINGS].prune_interval_seconds


TASKS = (
    every("sessions:retention-horizon", _interval, announce_horizon),
    every("sessions:sample-prune", lambda app: _interval(app) if app[SETTINGS].sample_retention_days else None, prune_samples),
)
