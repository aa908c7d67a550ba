"""SQL of the billing schema: sites, tariffs, charger sites, session prices, settlements."""
from __future__ import annotations

from collections.abc import AsyncIterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from shared.db import every_row
from shared.domain import SettlementStatus

SCHEMA = "billing"


def _after(cursor: tuple[datetime, str] | None, columns: str, first_arg: int) -> tuple[str, list[Any]]:
    """The keyset condition for newest-first lists: rows strictly after the cursor's row."""
    if cursor is None:
        return "true", []
    return f"({columns}) < (${first_arg}, ${first_arg + 1}::uuid)", [cursor[0], cursor[1]]


# Sites

# A site's own fields, in this order (sites.columns gives their values).
SITE_COLUMNS = ("name", "time_zone", "address", "city", "postal_code", "country", "latitude", "longitude", "publish", "max_power_kw")
_SITE_VALUES = ", ".join(f"${i}" for i in range(1, len(SITE_COLUMNS) + 1))


async def create_site(conn: asyncpg.Connection, fields: Sequence[Any]) -> asyncpg.Record:
    return await conn.fetchrow(
        f"INSERT INTO billing.sites (site_id, {', '.join(SITE_COLUMNS)}, created_at, updated_at) "
        f"VALUES (gen_random_uuid(), {_SITE_VALUES}, clock_timestamp(), clock_timestamp()) RETURNING *",
        *fields,
    )


async def replace_site(conn: asyncpg.Connection, site_id: UUID, fields: Sequence[Any]) -> asyncpg.Record | None:
    """Replace the site's own fields (not its wallet); None when there is no such site."""
    sets = ", ".join(f"{column} = ${i}" for i, column in enumerate(SITE_COLUMNS, start=2))
    return await conn.fetchrow(
        f"UPDATE billing.sites SET {sets}, updated_at = clock_timestamp() WHERE site_id = $1 RETURNING *",
        site_id, *fields,
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

async def create_tariff(conn: asyncpg.Connection, site_id: UUID, price: Decimal | None, currency: str,
                        ocpi: dict) -> asyncpg.Record | None:
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
            "INSERT INTO billing.tariffs (tariff_id, site_id, price_per_kwh, currency, ocpi, active_from, created_at) "
            "VALUES (gen_random_uuid(), $1, $2, $3, $5, $4, $4) RETURNING *",
            site_id, price, currency, created_at, ocpi,
        )


async def tariffs_closed_at(conn: asyncpg.Connection, site_id: UUID, at: datetime) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM billing.tariffs WHERE site_id = $1 AND active_until = $2", site_id, at)


async def tariff(conn: asyncpg.Connection, tariff_id: UUID) -> asyncpg.Record | None:
    """The tariff, with its site's `time_zone`."""
    return await conn.fetchrow(
        "SELECT t.*, s.time_zone FROM billing.tariffs t JOIN billing.sites s USING (site_id) WHERE t.tariff_id = $1", tariff_id,
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


async def tariffs_in_force(conn: asyncpg.Connection, wanted: Sequence[tuple[UUID, datetime]]) -> list[asyncpg.Record | None]:
    """For each (site, time), the site's tariff in force at that time, or None. Give a
    whole-second time as the end of its second (`start_instant`)."""
    rows = await conn.fetch(
        """
        SELECT DISTINCT ON (w.i) w.i, t.* FROM unnest($1::uuid[], $2::timestamptz[]) WITH ORDINALITY AS w(site_id, at, i)
        JOIN billing.tariffs t ON t.site_id = w.site_id AND t.active_from <= w.at AND w.at < coalesce(t.active_until, 'infinity')
        ORDER BY w.i, t.active_from DESC
        """,
        [site_id for site_id, _ in wanted], [at for _, at in wanted],
    )
    found = {r["i"]: r for r in rows}
    return [found.get(i) for i in range(1, len(wanted) + 1)]


# Charger sites

async def assign_site(
    conn: asyncpg.Connection, charge_point_id: str, site_id: UUID, *, as_of: datetime | None = None,
) -> asyncpg.Record | None:
    """Assign a charger to an existing site (the caller holds a transaction). With `as_of` (a
    registration's time), a newer assignment already made wins. None when the site does not exist
    or nothing changed."""
    if await conn.fetchval("SELECT 1 FROM billing.sites WHERE site_id = $1 FOR SHARE", site_id) is None:
        return None
    return await conn.fetchrow(
        "INSERT INTO billing.charger_sites (charge_point_id, site_id, assigned_at) "
        "VALUES ($1, $2, coalesce($3, clock_timestamp())) "
        "ON CONFLICT (charge_point_id) DO UPDATE SET site_id = EXCLUDED.site_id, assigned_at = EXCLUDED.assigned_at "
        "WHERE $3::timestamptz IS NULL OR charger_sites.assigned_at < EXCLUDED.assigned_at RETURNING *",
        charge_point_id, site_id, as_of,
    )


async def charger_site(conn: asyncpg.Connection, charge_point_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM billing.charger_sites WHERE charge_point_id = $1", charge_point_id)


async def sites_of_chargers(conn: asyncpg.Connection, charge_point_ids: Sequence[str]) -> dict[str, asyncpg.Record]:
    rows = await conn.fetch(
        "SELECT c.charge_point_id, s.* FROM billing.charger_sites c JOIN billing.sites s USING (site_id) "
        "WHERE c.charge_point_id = ANY($1::text[])",
        list(charge_point_ids),
    )
    return {r["charge_point_id"]: r for r in rows}


# Session prices

async def lock_session_prices(conn: asyncpg.Connection, sessions: Sequence[tuple[UUID, str]]) -> dict[UUID, int | None]:
    """Lock the price rows of (session id, charger) pairs, making a fresh one (revision None) the
    first time we hear of a session; returns the revision each has applied. Locks are taken in
    session id order, so competing consumers never wait on each other in a cycle."""
    ids = sorted({session_id for session_id, _ in sessions})
    chargers = dict(sessions)
    await conn.execute(
        "INSERT INTO billing.session_prices (session_id, charge_point_id, updated_at) "
        "SELECT *, clock_timestamp() FROM unnest($1::uuid[], $2::text[]) ON CONFLICT DO NOTHING",
        ids, [chargers[i] for i in ids],
    )
    rows = await conn.fetch(
        "SELECT session_id, revision FROM billing.session_prices WHERE session_id = ANY($1::uuid[]) "
        "ORDER BY session_id FOR UPDATE",
        ids,
    )
    return {r["session_id"]: r["revision"] for r in rows}


@dataclass(frozen=True)
class Revision:
    """A finalization revision applied without (re)pricing: the price that was, if any, stays."""
    session_id: UUID
    revision: int
    energy_wh: Decimal | None
    not_priced_reason: str


async def record_revisions(conn: asyncpg.Connection, revisions: Sequence[Revision], *, price_stays: bool = False) -> None:
    """Revisions applied without (re)pricing. With `price_stays` (money has moved) the priced
    energy stays beside the price and the revision's energy is noted as the latest."""
    if not revisions:
        return
    energy_column = "latest_energy_wh" if price_stays else "energy_wh"
    await conn.execute(
        f"""
        UPDATE billing.session_prices p SET revision = r.revision, {energy_column} = r.energy_wh,
            not_priced_reason = r.reason, updated_at = clock_timestamp()
        FROM unnest($1::uuid[], $2::int[], $3::numeric[], $4::text[]) AS r(session_id, revision, energy_wh, reason)
        WHERE p.session_id = r.session_id
        """,
        [r.session_id for r in revisions], [r.revision for r in revisions],
        [r.energy_wh for r in revisions], [r.not_priced_reason for r in revisions],
    )


@dataclass(frozen=True)
class Price:
    """A session priced at one finalization revision, by the tariff of its site in force at its start."""
    session_id: UUID
    charge_point_id: str
    revision: int
    energy_wh: Decimal
    site: asyncpg.Record
    tariff: asyncpg.Record
    cost: Decimal
    breakdown: list[dict]


async def record_prices(conn: asyncpg.Connection, prices: Sequence[Price]) -> dict[UUID, datetime]:
    """Store the prices; returns when each was priced."""
    if not prices:
        return {}
    rows = await conn.fetch(
        """
        UPDATE billing.session_prices p SET revision = n.revision, energy_wh = n.energy_wh, tariff_id = n.tariff_id,
            cost_amount = n.cost, currency = n.currency, priced_at = clock_timestamp(), not_priced_reason = NULL,
            updated_at = clock_timestamp()
        FROM unnest($1::uuid[], $2::int[], $3::numeric[], $4::uuid[], $5::numeric[], $6::text[])
            AS n(session_id, revision, energy_wh, tariff_id, cost, currency)
        WHERE p.session_id = n.session_id
        RETURNING p.session_id, p.priced_at
        """,
        [p.session_id for p in prices], [p.revision for p in prices], [p.energy_wh for p in prices],
        [p.tariff["tariff_id"] for p in prices], [p.cost for p in prices], [p.tariff["currency"] for p in prices],
    )
    return {r["session_id"]: r["priced_at"] for r in rows}


# Settlements

async def lock_settlements_of_sessions(conn: asyncpg.Connection, session_ids: Sequence[UUID]) -> dict[UUID, asyncpg.Record]:
    rows = await conn.fetch(
        "SELECT * FROM billing.settlements WHERE session_id = ANY($1::uuid[]) ORDER BY session_id FOR UPDATE",
        list(session_ids),
    )
    return {r["session_id"]: r for r in rows}


async def lock_settlement(conn: asyncpg.Connection, settlement_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM billing.settlements WHERE settlement_id = $1 FOR UPDATE", settlement_id)


async def get_settlement(conn: asyncpg.Connection, settlement_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM billing.settlements WHERE settlement_id = $1", settlement_id)


async def create_settlements(conn: asyncpg.Connection, prices: Sequence[Price]) -> list[asyncpg.Record]:
    """The one Pending settlement of each newly priced session, with its site's wallet at this moment."""
    if not prices:
        return []
    return await conn.fetch(
        "INSERT INTO billing.settlements (settlement_id, session_id, charge_point_id, site_id, amount, currency, wallet, "
        "energy_wh, status, created_at, updated_at) "
        "SELECT gen_random_uuid(), n.*, $8, clock_timestamp(), clock_timestamp() "
        "FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::numeric[], $5::text[], $6::text[], $7::numeric[]) "
        "AS n(session_id, charge_point_id, site_id, amount, currency, wallet, energy_wh) RETURNING *",
        [p.session_id for p in prices], [p.charge_point_id for p in prices], [p.site["site_id"] for p in prices],
        [p.cost for p in prices], [p.tariff["currency"] for p in prices], [p.site["payout_wallet"] for p in prices],
        [p.energy_wh for p in prices], SettlementStatus.PENDING,
    )


async def reprice_settlements(conn: asyncpg.Connection, prices: Sequence[Price]) -> None:
    """Pending settlements follow their session's new price (nothing has been paid yet)."""
    if not prices:
        return
    await conn.execute(
        """
        UPDATE billing.settlements s SET site_id = n.site_id, wallet = n.wallet, amount = n.amount, currency = n.currency,
            energy_wh = n.energy_wh, updated_at = clock_timestamp()
        FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::numeric[], $5::text[], $6::numeric[])
            AS n(session_id, site_id, wallet, amount, currency, energy_wh)
        WHERE s.session_id = n.session_id AND s.status = $7
        """,
        [p.session_id for p in prices], [p.site["site_id"] for p in prices], [p.site["payout_wallet"] for p in prices],
        [p.cost for p in prices], [p.tariff["currency"] for p in prices], [p.energy_wh for p in prices], SettlementStatus.PENDING,
    )


async def change_status(
    conn: asyncpg.Connection, settlement_id: UUID, status: SettlementStatus, *,
    chain: str | None = None, tx_hash: str | None = None, external_ref: str | None = None, error: str | None = None,
) -> asyncpg.Record:
    """Move a settlement (locked by the caller) to `status`. Submitting sets the transaction and
    clears an earlier error; failing keeps the transaction that failed."""
    if status == SettlementStatus.SUBMITTED:
        sets, args = "chain = $3, tx_hash = $4, external_ref = $5, error = NULL", [chain, tx_hash, external_ref]
    elif status == SettlementStatus.FAILED:
        sets, args = "error = $3", [error]
    else:
        sets, args = "error = NULL", []
    return await conn.fetchrow(
        f"UPDATE billing.settlements SET status = $2, {sets}, updated_at = clock_timestamp() WHERE settlement_id = $1 RETURNING *",
        settlement_id, status, *args,
    )


def _settlements_query(
    filters: dict[str, Any], *, cursor: tuple[datetime, str] | None = None, limit: int | None = None,
) -> tuple[str, list[Any]]:
    """Settlements newest first, each filter a column's value; `limit + 1` rows when `limit` (a
    page), every row without (an export)."""
    conditions, args = [], []
    for column, value in filters.items():
        if value is not None:
            args.append(value)
            conditions.append(f"{column} = ${len(args)}")
    where, cursor_args = _after(cursor, "created_at, settlement_id", len(args) + 1)
    conditions.append(where)
    args += cursor_args
    page = ""
    if limit is not None:
        args.append(limit + 1)
        page = f" LIMIT ${len(args)}"
    return (f"SELECT * FROM billing.settlements WHERE {' AND '.join(conditions)} "
            f"ORDER BY created_at DESC, settlement_id DESC{page}", args)


async def settlements_page(
    conn: asyncpg.Connection, filters: dict[str, Any], *, cursor: tuple[datetime, str] | None, limit: int,
) -> list[asyncpg.Record]:
    """A page of settlements, newest first, after the cursor's (createdAt, settlementId)."""
    sql, args = _settlements_query(filters, cursor=cursor, limit=limit)
    return await conn.fetch(sql, *args)


def every_settlement(conn: asyncpg.Connection, filters: dict[str, Any]) -> AsyncIterable[asyncpg.Record]:
    """Every matching settlement, newest first, for an export; iterate inside a transaction."""
    return every_row(conn, *_settlements_query(filters))


async def settlement_counts(conn: asyncpg.Connection, statuses: Sequence[SettlementStatus]) -> dict[str, tuple[int, float]]:
    """Per status of `statuses`: how many settlements, and how long the oldest has been in it (seconds)."""
    rows = await conn.fetch(
        "SELECT status, count(*) AS n, extract(epoch FROM now() - min(updated_at))::float8 AS oldest "
        "FROM billing.settlements WHERE status = ANY($1::text[]) GROUP BY status", list(statuses))
    return {r["status"]: (r["n"], r["oldest"]) for r in rows}
