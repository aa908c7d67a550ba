"""Announcing how far a going session of a roaming partner's token has come (`session.progress`),
for the partner's Session (priced so far by billing): at its start, then as its meter moves, at
most every CPMS_SESSION_PROGRESS_SECONDS per session. Its end is `session.finalized`. Other
sessions are nobody's to follow while they go, so they announce nothing until they end."""
from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from services.sessions import store
from services.sessions.periods import periods_of
from services.sessions.views import connector_of, realtime_authorized
from shared.domain import SessionProgress
from shared.outbox import enqueue_domain_many


async def announce_progress(conn: asyncpg.Connection, session_ids: Sequence[UUID], *, every_seconds: float) -> int:
    """Announce the progress of those of the sessions that are going and due; returns how many."""
    rows = await store.sessions.sessions_due_progress(conn, session_ids, every_seconds=every_seconds)
    if not rows:
        return 0
    # As periods_of takes a finalized session: its energy so far, up to its newest event.
    going = [{**row, "energy_wh": row["so_far_wh"], "last_event_at": _newest(row), "parked_until": None} for row in rows]
    found = await periods_of(conn, going)
    await enqueue_domain_many(conn, store.SCHEMA, [
        SessionProgress(
            sessionId=row["session_id"], chargePointId=row["charge_point_id"], connectorId=connector_of(row),
            transactionId=row["transaction_id"], idTag=row["id_tag"], startedAt=row["started_at"], at=row["last_event_at"],
            energyWh=row["energy_wh"], sequence=row["progress_sequence"],
            periods=[p.body() for p in found.get(row["session_id"], [])], partnerToken=row["partner_token"],
            connector={"standard": row["standard"], "format": row["format"], "powerType": row["power_type"]},
            realtimeAuthorized=realtime_authorized(row),
        )
        for row in going
    ])
    return len(rows)


def _newest(row: asyncpg.Record):
    return max(row["last_event_at"] or row["started_at"], row["started_at"])
