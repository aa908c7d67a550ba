"""SQL of the billing schema: sites, tariffs, charger sites, session prices, settlements."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from shared.domain import ChargerSiteAssigned, SessionPriced, SettlementStatusChanged
from shared.outbox import enqueue_domain

SCHEMA = "billing"


def render_site(row: asyncpg.Record) -> dict:
    return {"siteId": row["site_id"], "name": row["name"], "payoutWallet": row["payout_wallet"], "createdAt": row["created_at"]}


def render_tariff(row: asyncpg.Record) -> dict:
    return {
        "tariffId": row["tariff_id"], "siteId": row["site_id"], "pricePerKwh": row["price_per_kwh"],
        "currency": row["currency"], "isActive": row["active_until"] is None, "createdAt": row["created_at"],
    }


def render_assignment(row: asyncpg.Record) -> dict:
    return {"chargePointId": row["charge_point_id"], "siteId": row["site_id"], "assignedAt": row["assigned_at"]}


def render_settlement(row: asyncpg.Record) -> dict:
    return {
        "settlementId": row["settlement_id"], "sessionId": row["session_id"], "chargePointId": row["charge_point_id"],
        "siteId": row["site_id"], "amount": row["amount"], "currency": row["currency"], "wallet": row["wallet"],
        "status": row["status"], "chain": row["chain"], "txHash": row["tx_hash"], "externalRef": row["external_ref"],
        "error": row["error"], "createdAt": row["created_at"], "updatedAt": row["updated_at"],
    }


def _after(cursor: tuple[datetime, str] | None, columns: str, first_arg: int) -> tuple[str, list[Any]]:
    """The keyset condition for newest-first lists: rows strictly after the cursor's row."""
    if cursor is None:
        return "true", []
    return f"({columns}) < (${first_arg}, ${first_arg + 1}::uuid)", [cursor[0], cursor[1]]


# Sites

async def create_site(conn: asyncpg.Connection, name: str) -> asyncpg.Record:
    return await conn.fetchrow(
        "INSERT INTO billing.sites (site_id, name, created_at, updated_at) "
        "VALUES (gen_random_uuid(), $1, clock_timestamp(), clock_timestamp()) RETURNING *",
        name,
    )


async def get_site(conn: asyncpg.Connection, site_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM billing.sites WHERE site_id = $1", site_id)


async def list_sites(conn: asyncpg.Connection, *, limit: int, cursor: tuple[datetime, str] | None) -> list[asyncpg.Record]:
    where, args = _after(cursor, "created_at, site_id", 2)
    return await conn.fetch(
        f"SELECT * FROM billing.sites WHERE {where} ORDER BY created_at DESC, site_id DESC LIMIT $1", limit + 1, *args,
    )


async def set_wallet(conn: asyncpg.Connection, site_id: UUID, wallet: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "UPDATE billing.sites SET payout_wallet = $2, updated_at = clock_timestamp() WHERE site_id = $1 RETURNING *",
        site_id, wallet,
    )


# Tariffs

async def create_tariff(conn: asyncpg.Connection, site_id: UUID, price: Decimal, currency: str) -> asyncpg.Record | None:
    """Make a tariff the site's active one, closing the previous at this one's creation time.
    None when the site does not exist."""
    async with conn.transaction():
        # The site lock orders concurrent tariff creations, so their spans never overlap.
        if await conn.fetchval("SELECT 1 FROM billing.sites WHERE site_id = $1 FOR NO KEY UPDATE", site_id) is None:
            return None
        previous_from = await conn.fetchval(
            "SELECT active_from FROM billing.tariffs WHERE site_id = $1 AND active_until IS NULL", site_id,
        )
        created_at = await conn.fetchval("SELECT greatest(clock_timestamp(), $1::timestamptz)", previous_from)
        await conn.execute(
            "UPDATE billing.tariffs SET active_until = $2 WHERE site_id = $1 AND active_until IS NULL", site_id, created_at,
        )
        return await conn.fetchrow(
            "INSERT INTO billing.tariffs (tariff_id, site_id, price_per_kwh, currency, active_from, created_at) "
            "VALUES (gen_random_uuid(), $1, $2, $3, $4, $4) RETURNING *",
            site_id, price, currency, created_at,
        )


async def list_tariffs(
    conn: asyncpg.Connection, site_id: UUID, *, limit: int, cursor: tuple[datetime, str] | None,
) -> list[asyncpg.Record]:
    where, args = _after(cursor, "active_from, tariff_id", 3)
    return await conn.fetch(
        f"SELECT * FROM billing.tariffs WHERE site_id = $1 AND {where} "
        "ORDER BY active_from DESC, tariff_id DESC LIMIT $2",
        site_id, limit + 1, *args,
    )


async def tariff_in_force(conn: asyncpg.Connection, site_id: UUID, at: datetime) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM billing.tariffs WHERE site_id = $1 AND active_from <= $2 "
        "AND $2 < coalesce(active_until, 'infinity') ORDER BY active_from DESC LIMIT 1",
        site_id, at,
    )


# Charger sites

async def assign_site(
    conn: asyncpg.Connection, charge_point_id: str, site_id: UUID, *, as_of: datetime | None = None,
) -> asyncpg.Record | None:
    """Assign a charger to an existing site and announce it. With `as_of` (a registration's time),
    a newer assignment already made wins. None when the site does not exist or nothing changed."""
    async with conn.transaction():
        if await conn.fetchval("SELECT 1 FROM billing.sites WHERE site_id = $1 FOR SHARE", site_id) is None:
            return None
        row = await conn.fetchrow(
            "INSERT INTO billing.charger_sites (charge_point_id, site_id, assigned_at) "
            "VALUES ($1, $2, coalesce($3, clock_timestamp())) "
            "ON CONFLICT (charge_point_id) DO UPDATE SET site_id = EXCLUDED.site_id, assigned_at = EXCLUDED.assigned_at "
            "WHERE $3::timestamptz IS NULL OR charger_sites.assigned_at < EXCLUDED.assigned_at RETURNING *",
            charge_point_id, site_id, as_of,
        )
        if row is not None:
            await enqueue_domain(conn, SCHEMA, ChargerSiteAssigned(
                chargePointId=charge_point_id, siteId=site_id, at=row["assigned_at"],
            ))
        return row


async def site_of_charger(conn: asyncpg.Connection, charge_point_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT s.* FROM billing.charger_sites c JOIN billing.sites s USING (site_id) WHERE c.charge_point_id = $1",
        charge_point_id,
    )


# Session prices

async def lock_session_price(conn: asyncpg.Connection, session_id: UUID, charge_point_id: str) -> asyncpg.Record:
    """The session's price row, locked; a fresh one (revision NULL) the first time we hear of the session."""
    await conn.execute(
        "INSERT INTO billing.session_prices (session_id, charge_point_id, updated_at) "
        "VALUES ($1, $2, clock_timestamp()) ON CONFLICT DO NOTHING",
        session_id, charge_point_id,
    )
    return await conn.fetchrow("SELECT * FROM billing.session_prices WHERE session_id = $1 FOR UPDATE", session_id)


async def record_revision(
    conn: asyncpg.Connection, session_id: UUID, revision: int, energy_wh: Decimal | None, *, not_priced_reason: str | None,
) -> None:
    """A revision was applied without (re)pricing: the price that was, if any, stays."""
    await conn.execute(
        "UPDATE billing.session_prices SET revision = $2, energy_wh = $3, not_priced_reason = $4, updated_at = clock_timestamp() "
        "WHERE session_id = $1",
        session_id, revision, energy_wh, not_priced_reason,
    )


async def record_price(
    conn: asyncpg.Connection, session_id: UUID, revision: int, energy_wh: Decimal, tariff: asyncpg.Record, cost: Decimal,
) -> datetime:
    priced_at = await conn.fetchval(
        "UPDATE billing.session_prices SET revision = $2, energy_wh = $3, tariff_id = $4, cost_amount = $5, currency = $6, "
        "priced_at = clock_timestamp(), not_priced_reason = NULL, updated_at = clock_timestamp() "
        "WHERE session_id = $1 RETURNING priced_at",
        session_id, revision, energy_wh, tariff["tariff_id"], cost, tariff["currency"],
    )
    await enqueue_domain(conn, SCHEMA, SessionPriced(
        sessionId=session_id, tariffId=tariff["tariff_id"], costAmount=cost, costCurrency=tariff["currency"],
        pricedAt=priced_at, revision=revision,
    ))
    return priced_at


# Settlements

async def lock_settlement_of_session(conn: asyncpg.Connection, session_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM billing.settlements WHERE session_id = $1 FOR UPDATE", session_id)


async def lock_settlement(conn: asyncpg.Connection, settlement_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM billing.settlements WHERE settlement_id = $1 FOR UPDATE", settlement_id)


async def get_settlement(conn: asyncpg.Connection, settlement_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM billing.settlements WHERE settlement_id = $1", settlement_id)


async def _announce(conn: asyncpg.Connection, row: asyncpg.Record) -> asyncpg.Record:
    await enqueue_domain(conn, SCHEMA, SettlementStatusChanged(
        settlementId=row["settlement_id"], sessionId=row["session_id"], status=row["status"], at=row["updated_at"],
    ))
    return row


async def create_settlement(
    conn: asyncpg.Connection, session_id: UUID, charge_point_id: str, site: asyncpg.Record, amount: Decimal, currency: str,
) -> asyncpg.Record:
    row = await conn.fetchrow(
        "INSERT INTO billing.settlements (settlement_id, session_id, charge_point_id, site_id, amount, currency, wallet, "
        "status, created_at, updated_at) "
        "VALUES (gen_random_uuid(), $1, $2, $3, $4, $5, $6, 'Pending', clock_timestamp(), clock_timestamp()) RETURNING *",
        session_id, charge_point_id, site["site_id"], amount, currency, site["payout_wallet"],
    )
    return await _announce(conn, row)


async def reprice_settlement(
    conn: asyncpg.Connection, settlement_id: UUID, site: asyncpg.Record, amount: Decimal, currency: str,
) -> None:
    """A Pending settlement follows its session's new price (nothing has been paid yet)."""
    await conn.execute(
        "UPDATE billing.settlements SET site_id = $2, wallet = $3, amount = $4, currency = $5, updated_at = clock_timestamp() "
        "WHERE settlement_id = $1 AND status = 'Pending'",
        settlement_id, site["site_id"], site["payout_wallet"], amount, currency,
    )


async def change_status(
    conn: asyncpg.Connection, settlement_id: UUID, status: str, *,
    chain: str | None = None, tx_hash: str | None = None, external_ref: str | None = None, error: str | None = None,
) -> asyncpg.Record:
    """Move a settlement (locked by the caller) to `status` and announce it. Submitting sets the
    transaction and clears an earlier error; failing keeps the transaction that failed."""
    if status == "Submitted":
        sets, args = "chain = $3, tx_hash = $4, external_ref = $5, error = NULL", [chain, tx_hash, external_ref]
    elif status == "Failed":
        sets, args = "error = $3", [error]
    else:
        sets, args = "error = NULL", []
    row = await conn.fetchrow(
        f"UPDATE billing.settlements SET status = $2, {sets}, updated_at = clock_timestamp() WHERE settlement_id = $1 RETURNING *",
        settlement_id, status, *args,
    )
    return await _announce(conn, row)


async def list_settlements(
    conn: asyncpg.Connection, *, limit: int, cursor: tuple[datetime, str] | None, filters: dict[str, Any],
) -> list[asyncpg.Record]:
    conditions, args = [], [limit + 1]
    for column, value in filters.items():
        if value is not None:
            args.append(value)
            conditions.append(f"{column} = ${len(args)}")
    where, cursor_args = _after(cursor, "created_at, settlement_id", len(args) + 1)
    conditions.append(where)
    return await conn.fetch(
        f"SELECT * FROM billing.settlements WHERE {' AND '.join(conditions)} "
        "ORDER BY created_at DESC, settlement_id DESC LIMIT $1",
        *args, *cursor_args,
    )


async def settlement_counts(conn: asyncpg.Connection) -> dict[str, int]:
    rows = await conn.fetch("SELECT status, count(*) AS n FROM billing.settlements GROUP BY status")
    return {r["status"]: r["n"] for r in rows}
