"""SQL of the ingest schema: chargers, handshake failures, the spool, the raw event archive."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg

from shared.consumer import Message
from shared.db import rows_affected
from shared.topology import EVENTS

SCHEMA = "ingest"
_CHARGER_COLUMNS = "charge_point_id, is_active, site_id, created_at, updated_at"


@dataclass(frozen=True)
class Handshake:
    """What a handshake needs to know of a charger id, read in one statement (None: unknown)."""

    secret_hash: str | None
    is_active: bool
    failures: int
    window_started_at: datetime | None

    def throttled_for(self, *, max_failures: int, window: float) -> float:
        """Seconds until this charger may try again (0 when it may try now)."""
        if self.window_started_at is None or self.failures < max_failures:
            return 0.0
        remaining = (self.window_started_at + timedelta(seconds=window) - datetime.now(UTC)).total_seconds()
        return max(remaining, 0.0)


async def handshake_of(conn: asyncpg.Connection, charge_point_id: str) -> Handshake:
    row = await conn.fetchrow(
        """
        SELECT c.secret_hash, coalesce(c.is_active, false) AS is_active, coalesce(f.failures, 0) AS failures, f.window_started_at
        FROM (SELECT $1::text AS charge_point_id) k
        LEFT JOIN ingest.chargers c USING (charge_point_id)
        LEFT JOIN ingest.auth_failures f USING (charge_point_id)
        """,
        charge_point_id,
    )
    return Handshake(row["secret_hash"], row["is_active"], row["failures"], row["window_started_at"])


async def insert_charger(
    conn: asyncpg.Connection, charge_point_id: str, secret_hash: str, site_id: UUID | None, *, replace: bool = False
) -> asyncpg.Record | None:
    """Insert a charger; None if it exists and not `replace` (which resets its secret and activates it)."""
    conflict = (
        "ON CONFLICT (charge_point_id) DO UPDATE SET secret_hash = EXCLUDED.secret_hash, is_active = true, "
        "site_id = COALESCE(EXCLUDED.site_id, chargers.site_id), updated_at = now()"
        if replace else "ON CONFLICT (charge_point_id) DO NOTHING"
    )
    return await conn.fetchrow(
        f"INSERT INTO ingest.chargers (charge_point_id, secret_hash, site_id) VALUES ($1, $2, $3) {conflict} "
        f"RETURNING {_CHARGER_COLUMNS}",
        charge_point_id, secret_hash, site_id,
    )


async def charger(conn: asyncpg.Connection, charge_point_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM ingest.chargers WHERE charge_point_id = $1", charge_point_id)


async def rotate_secret(conn: asyncpg.Connection, charge_point_id: str, secret_hash: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"UPDATE ingest.chargers SET secret_hash = $2, updated_at = now() WHERE charge_point_id = $1 RETURNING {_CHARGER_COLUMNS}",
        charge_point_id, secret_hash,
    )


async def set_active(conn: asyncpg.Connection, charge_point_id: str, is_active: bool) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"UPDATE ingest.chargers SET is_active = $2, updated_at = now() WHERE charge_point_id = $1 RETURNING {_CHARGER_COLUMNS}",
        charge_point_id, is_active,
    )


async def record_failure(conn: asyncpg.Connection, charge_point_id: str, *, window: float) -> None:
    """Count a failed handshake; a failure after the window has passed starts a new window."""
    await conn.execute(
        """
        INSERT INTO ingest.auth_failures AS f (charge_point_id, failures, window_started_at) VALUES ($1, 1, now())
        ON CONFLICT (charge_point_id) DO UPDATE SET
            failures = CASE WHEN f.window_started_at < now() - make_interval(secs => $2) THEN 1 ELSE f.failures + 1 END,
            window_started_at = CASE WHEN f.window_started_at < now() - make_interval(secs => $2) THEN now() ELSE f.window_started_at END
        """,
        charge_point_id, window,
    )


async def clear_failures(conn: asyncpg.Connection, charge_point_id: str) -> None:
    await conn.execute("DELETE FROM ingest.auth_failures WHERE charge_point_id = $1", charge_point_id)


async def spool_events(conn: asyncpg.Connection, events: Sequence[tuple[str, str, bytes]]) -> None:
    """Hold (routing key, event id, encoded body) for the spool relay, in receive order, in one statement."""
    await conn.execute(
        "INSERT INTO ingest.spool (exchange, routing_key, message_id, body) "
        "SELECT $1, k, i, b::jsonb FROM unnest($2::text[], $3::text[], $4::text[]) AS e(k, i, b)",
        EVENTS.key, [e[0] for e in events], [e[1] for e in events], [e[2].decode() for e in events],
    )


def _event_time(body: dict, name: str) -> datetime:
    value = body.get(name)
    return datetime.fromisoformat(value) if isinstance(value, str) else datetime.now(UTC)


async def archive_events(conn: asyncpg.Connection, messages: list[Message]) -> int:
    """Store a batch of events in one statement, as they were sent plus what ingest added; an
    eventId already archived is skipped (the table is the archive consumer's inbox). `ts` is the
    effective time. Returns how many were new."""
    result = await conn.execute(
        """
        INSERT INTO ingest.events (event_id, type, charge_point_id, ts, received_at, receive_order, anomalies, body)
        SELECT e.event_id, e.type, e.charge_point_id, e.ts, e.received_at, e.receive_order,
               ARRAY(SELECT jsonb_array_elements_text(coalesce(e.body->'anomalies', '[]'))), e.body
        FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::bigint[], $7::jsonb[])
            AS e(event_id, type, charge_point_id, ts, received_at, receive_order, body)
        ON CONFLICT (event_id) DO NOTHING
        """,
        [m.message_id for m in messages], [m.body["type"] for m in messages], [m.body["chargePointId"] for m in messages],
        [_event_time(m.body, "effectiveTs") for m in messages], [_event_time(m.body, "receivedAt") for m in messages],
        [m.body.get("receiveOrder", 0) for m in messages], [m.body for m in messages],
    )
    return rows_affected(result)
