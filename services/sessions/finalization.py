"""(Re-)finalizing sessions and announcing it: every finalization the store derives is written
to the outbox as `session.finalized` in the same transaction, with the session's new revision."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg

from services.sessions import metrics, store
from services.sessions.periods import Period, periods_of
from services.sessions.views import connector_of, realtime_authorized
from shared.domain import MONEY_HAS_MOVED, SessionFinalized
from shared.errors import Conflict
from shared.outbox import enqueue_domain_many


def finalized_message(row: asyncpg.Record, periods: list[Period] | None = None) -> SessionFinalized:
    """What billing hears of a (re-)finalization: the session's facts, energy and charging periods
    at this revision."""
    return SessionFinalized(
        sessionId=row["session_id"], chargePointId=row["charge_point_id"],
        connectorId=connector_of(row), transactionId=row["transaction_id"],
        startedAt=row["started_at"], endedAt=row["ended_at"], energyWh=row["energy_wh"],
        energySource=row["energy_source"], isEstimated=row["is_estimated"],
        finalizedAt=row["finalized_at"], revision=row["revision"],
        periods=[p.body() for p in periods] if periods is not None else None,
        partnerToken=row["partner_token"], realtimeAuthorized=realtime_authorized(row),
    )


async def refinalize(conn: asyncpg.Connection, session_ids: Sequence[UUID], *, forced: Sequence[UUID] = ()) -> list[asyncpg.Record]:
    """Derive the sessions from their facts; publish those whose finalization changed (or was forced)."""
    rows = await store.sessions.derive_sessions(conn, session_ids, forced=forced)
    found = await periods_of(conn, rows) if rows else {}
    await enqueue_domain_many(conn, store.SCHEMA, [finalized_message(row, found.get(row["session_id"])) for row in rows])
    for row in rows:
        kind = "forced" if row["session_id"] in forced else "first" if row["first_finalization"] else "refinalized"
        metrics.FINALIZED.labels(row["energy_source"], kind).inc()
        if row["settlement_status"] in MONEY_HAS_MOVED:
            # Money has moved: billing keeps what it billed; what changed shows as unbilled energy.
            metrics.REFINALIZED_AFTER_BILLING.inc()
            found = (row["energy_wh"] or 0) - (row["previous_energy_wh"] or 0)
            if found > 0:
                metrics.UNBILLED_ENERGY.inc(float(found))
    return rows


class MoneyHasMoved(Conflict):
    title = "Settlement in progress"


async def finalize_on_request(conn: asyncpg.Connection, row: asyncpg.Record, *, force: bool) -> bool:
    """An operator's finalize of a session (locked by the caller): an Active one is closed as it
    stands (`closedBy: "Operator"`), a finalized one recomputed only with `force`, and nothing once
    money has moved. Returns whether the session was (re-)finalized."""
    if force and row["settlement_status"] in MONEY_HAS_MOVED:
        raise MoneyHasMoved(f"the session's settlement is {row['settlement_status']}: money has moved, it cannot be re-finalized")
    if row["status"] != "Finalized":
        await store.sessions.close_session(conn, row["session_id"])
    elif not force:
        return False
    await refinalize(conn, [row["session_id"]], forced=[row["session_id"]])
    return True


async def close_stale_sessions(conn: asyncpg.Connection, *, stale_after_seconds: float) -> int:
    """Close and finalize the sessions that have seen no event for `stale_after_seconds` (Stale)."""
    closed = await store.sessions.close_stale(conn, silent_since=datetime.now(UTC) - timedelta(seconds=stale_after_seconds))
    if closed:
        await refinalize(conn, [r["session_id"] for r in closed])
        metrics.CLOSED_BY_RULE.labels("Stale").inc(len(closed))
    return len(closed)
