"""The charger registry: ingest decides who is registered and active, and who got in at the
handshake, and announces each (`charger.registered`, `charger.active-changed`, `charger.handshake`)
in the transaction that makes it, for the copies the other services keep."""
from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import asyncpg

from services.ingest import store
from shared.domain import ChargerActiveChanged, ChargerHandshake, ChargerRegistered
from shared.outbox import enqueue_domain


async def register(
    conn: asyncpg.Connection, charge_point_id: str, secret_hash: str, site_id: UUID | None, *, replace: bool = False,
) -> tuple[asyncpg.Record, str] | None:
    """Register a charger (None if it exists and not `replace`) and announce it; returns the row
    and the announcement's message id."""
    async with conn.transaction():
        row = await store.insert_charger(conn, charge_point_id, secret_hash, site_id, replace=replace)
        if row is None:
            return None
        return row, await enqueue_domain(conn, store.SCHEMA, ChargerRegistered(
            chargePointId=charge_point_id, isActive=row["is_active"], siteId=row["site_id"], at=row["updated_at"]))


async def set_active(conn: asyncpg.Connection, charge_point_id: str, is_active: bool) -> tuple[asyncpg.Record, str] | None:
    """Switch a charger on or off and announce it; None for an unknown charger."""
    async with conn.transaction():
        row = await store.set_active(conn, charge_point_id, is_active)
        if row is None:
            return None
        return row, await enqueue_domain(conn, store.SCHEMA, ChargerActiveChanged(
            chargePointId=charge_point_id, isActive=is_active, at=row["updated_at"]))


async def record_handshake(conn: asyncpg.Connection, charge_point_id: str, *, allowed: bool, window: float,
                           had_failures: bool = True) -> None:
    """A handshake's outcome: failures are counted for throttling (a success clears them), and
    announced, so the fleet view shows who connects and who keeps failing. The usual case (a
    charger without failures let in) is one statement, so no transaction of its own."""
    announced = ChargerHandshake(chargePointId=charge_point_id, allowed=allowed, at=datetime.now(UTC))
    if allowed and not had_failures:
        await enqueue_domain(conn, store.SCHEMA, announced)
        return
    async with conn.transaction():
        if allowed:
            await store.clear_failures(conn, charge_point_id)
        else:
            await store.record_failure(conn, charge_point_id, window=window)
        await enqueue_domain(conn, store.SCHEMA, announced)