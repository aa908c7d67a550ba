"""SQL of what the sessions service lets go (services/sessions/retention.py decides when): the
meter samples (and power readings) of sessions whose money is settled, and the start of the oldest session whose money
is not."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg

from shared.db import rows_affected

# A session whose money is not settled: its facts are still needed ($1: the grace of a session
# finalized without a settlement, $2: the statuses of a settlement not settled). A settlement
# status that is NULL must not make the whole condition NULL; anything else unknown holds.
_HOLDING = (
    "coalesce(s.status = 'Active' OR coalesce(s.settlement_status = ANY($2::text[]), false) "
    "OR (s.settlement_status IS NULL AND s.finalized_at > now() - make_interval(secs => $1)), true)"
)


async def oldest_holding_start(conn: asyncpg.Connection, *, unpriced_grace: timedelta, unsettled: Sequence[str]) -> datetime | None:
    """When the oldest session whose money is not settled was first seen; None when there is none."""
    return await conn.fetchval(
        f"SELECT min(s.first_seen_at) FROM sessions.sessions s WHERE {_HOLDING}", unpriced_grace.total_seconds(), list(unsettled))


async def prune_samples(
    conn: asyncpg.Connection, *, finalized_before: datetime, unpriced_grace: timedelta, unsettled: Sequence[str], limit: int,
) -> tuple[int, int]:
    """Let go of the samples of up to `limit` sessions finalized before `finalized_before` whose
    money is settled, and mark them pruned; returns (sessions, samples deleted)."""
    sessions = await conn.fetch(
        f"""
        SELECT s.session_id FROM sessions.sessions s
        WHERE s.status = 'Finalized' AND s.samples_pruned_at IS NULL AND s.finalized_at < $3 AND NOT {_HOLDING}
        ORDER BY s.finalized_at LIMIT $4 FOR UPDATE SKIP LOCKED
        """,
        unpriced_grace.total_seconds(), list(unsettled), finalized_before, limit,
    )
    ids = [r["session_id"] for r in sessions]
    if not ids:
        return 0, 0
    deleted = await conn.execute("DELETE FROM sessions.meter_samples WHERE session_id = ANY($1::uuid[])", ids)
    await conn.execute("DELETE FROM sessions.power_readings WHERE session_id = ANY($1::uuid[])", ids)  # site power limits'
    await conn.execute("UPDATE sessions.sessions SET samples_pruned_at = now() WHERE session_id = ANY($1::uuid[])", ids)
    return len(ids), rows_affected(deleted)
