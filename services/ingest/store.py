"""SQL of the ingest schema: chargers, handshake failures, the spool, the raw event archive and its
retention, operators and the audit trail."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg

from shared.consumer import Message
from shared.db import Filters, rows_affected
from shared.domain import AuditRecorded, RetentionHorizon
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


# --- operators and the audit trail ---------------------------------------------------------------

async def create_operator(conn: asyncpg.Connection, name: str, role: str, token_hash: str) -> asyncpg.Record | None:
    """A new operator, or a revoked name given again; None while the name is held by a live operator."""
    return await conn.fetchrow(
        """
        INSERT INTO ingest.operators AS o (name, role, token_hash, created_at, changed_at)
        VALUES ($1, $2, $3, clock_timestamp(), clock_timestamp())
        ON CONFLICT (name) DO UPDATE SET role = EXCLUDED.role, token_hash = EXCLUDED.token_hash,
            created_at = EXCLUDED.created_at, changed_at = EXCLUDED.changed_at, revoked_at = NULL
        WHERE o.revoked_at IS NOT NULL
        RETURNING *
        """,
        name, role, token_hash,
    )


async def operators(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """The operators not revoked, by name."""
    return await conn.fetch("SELECT * FROM ingest.operators WHERE revoked_at IS NULL ORDER BY name")


async def operator(conn: asyncpg.Connection, name: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM ingest.operators WHERE name = $1 AND revoked_at IS NULL", name)


async def revoke_operator(conn: asyncpg.Connection, name: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "UPDATE ingest.operators SET revoked_at = clock_timestamp(), changed_at = clock_timestamp() "
        "WHERE name = $1 AND revoked_at IS NULL RETURNING *",
        name,
    )


async def record_audit(conn: asyncpg.Connection, entries: Sequence[AuditRecorded]) -> None:
    """Keep each entry once (by its id), whichever service reported it how often."""
    await conn.executemany(
        "INSERT INTO ingest.audit (entry_id, at, actor, role, method, path, entity, entity_id, before, after) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (entry_id) DO NOTHING",
        [(e.entryId, e.at, e.actor, e.role, e.method, e.path, e.entity, e.entityId, e.before, e.after) for e in entries],
    )


async def audit_page(
    conn: asyncpg.Connection, *, entity: str | None, entity_id: str | None, actor: str | None,
    at_from: datetime | None, at_to: datetime | None, before: tuple[datetime, UUID] | None, limit: int,
) -> list[asyncpg.Record]:
    """A page of the trail, newest first, after the cursor's (at, entryId), filtered."""
    filters = Filters()
    filters.add_equal(entity=entity, entity_id=entity_id, actor=actor)
    filters.add_given("at >= {}", at_from)
    filters.add_given("at < {}", at_to)
    if before is not None:
        filters.add("(at, entry_id) < ({}, {}::uuid)", *before)
    return await conn.fetch(
        f"SELECT * FROM ingest.audit WHERE {filters.where} ORDER BY at DESC, entry_id DESC LIMIT {filters.arg(limit + 1)}",
        *filters.args,
    )


# --- the archive's retention ---------------------------------------------------------------------

async def record_horizon(conn: asyncpg.Connection, horizon: RetentionHorizon) -> None:
    """The newest announcement wins, by its `at`."""
    await conn.execute(
        """
        INSERT INTO ingest.retention_horizon AS h (id, keep_from, announced_at) VALUES (true, $1, $2)
        ON CONFLICT (id) DO UPDATE SET keep_from = EXCLUDED.keep_from, announced_at = EXCLUDED.announced_at
        WHERE EXCLUDED.announced_at > h.announced_at
        """,
        horizon.keepFrom, horizon.at,
    )


async def retention_horizon(conn: asyncpg.Connection) -> datetime | None:
    """What the sessions service last said it still needs events from; None before it spoke."""
    return await conn.fetchval("SELECT keep_from FROM ingest.retention_horizon")


async def prune_archive(conn: asyncpg.Connection, *, received_before: datetime, limit: int) -> int:
    """Delete up to `limit` archived events received before `received_before`, oldest first, by the
    receipt index; returns how many."""
    return await conn.fetchval(
        """
        WITH gone AS (
            DELETE FROM ingest.events WHERE event_id IN (
                SELECT event_id FROM ingest.events WHERE received_at < $1 ORDER BY received_at LIMIT $2
            ) RETURNING 1
        ) SELECT count(*) FROM gone
        """,
        received_before, limit,
    )
