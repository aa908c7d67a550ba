"""SQL of the tariffs roaming publishes: billing's, as its `tariff.changed` messages say."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from shared.domain import TariffChanged


async def record(conn: asyncpg.Connection, tariff: TariffChanged) -> bool:
    done = await conn.execute(
        """
        INSERT INTO ocpi.tariffs AS t (tariff_id, site_id, currency, ocpi, active_from, active_until, changed_at, last_updated)
        VALUES ($1, $2, $3, $4, $5, $6, $7, clock_timestamp())
        ON CONFLICT (tariff_id) DO UPDATE SET site_id = EXCLUDED.site_id, currency = EXCLUDED.currency, ocpi = EXCLUDED.ocpi,
            active_from = EXCLUDED.active_from, active_until = EXCLUDED.active_until, changed_at = EXCLUDED.changed_at,
            last_updated = clock_timestamp()
        WHERE EXCLUDED.changed_at > t.changed_at
        """,
        tariff.tariffId, tariff.siteId, tariff.currency, tariff.ocpi, tariff.activeFrom, tariff.activeUntil, tariff.at,
    )
    return done != "INSERT 0 0"


async def get(conn: asyncpg.Connection, tariff_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM ocpi.tariffs WHERE tariff_id = $1", tariff_id)


async def in_force(conn: asyncpg.Connection, site_ids: Sequence[UUID], at: datetime) -> dict[UUID, list[str]]:
    """The ids of each site's tariffs in force at `at` (a connector's tariff_ids)."""
    rows = await conn.fetch(
        "SELECT site_id, tariff_id FROM ocpi.tariffs WHERE site_id = ANY($1::uuid[]) AND active_from <= $2 "
        "AND (active_until IS NULL OR active_until > $2) ORDER BY active_from, tariff_id", list(site_ids), at)
    found: dict[UUID, list[str]] = {}
    for row in rows:
        found.setdefault(row["site_id"], []).append(str(row["tariff_id"]))
    return found


async def page(conn: asyncpg.Connection, *, date_from: datetime | None, date_to: datetime | None, offset: int,
               limit: int) -> tuple[list[asyncpg.Record], int]:
    where = "($1::timestamptz IS NULL OR last_updated >= $1) AND ($2::timestamptz IS NULL OR last_updated < $2)"
    total = await conn.fetchval(f"SELECT count(*) FROM ocpi.tariffs WHERE {where}", date_from, date_to)
    rows = await conn.fetch(f"SELECT * FROM ocpi.tariffs WHERE {where} ORDER BY last_updated, tariff_id OFFSET $3 LIMIT $4",
                            date_from, date_to, offset, limit)
    return rows, total
