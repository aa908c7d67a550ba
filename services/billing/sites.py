"""Sites and which site a charger belongs to: billing decides both and announces every new site
(`site.created`) and every assignment (`charger.site-assigned`) in the transaction that makes it."""
from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from services.billing import store
from shared.domain import ChargerSiteAssigned, SiteCreated
from shared.outbox import enqueue_domain


async def create(conn: asyncpg.Connection, name: str) -> tuple[asyncpg.Record, str]:
    """A new site and its announcement's id."""
    async with conn.transaction():
        row = await store.create_site(conn, name)
        return row, await enqueue_domain(conn, store.SCHEMA, SiteCreated(siteId=row["site_id"], name=name, at=row["created_at"]))


async def assign(
    conn: asyncpg.Connection, charge_point_id: str, site_id: UUID, *, as_of: datetime | None = None,
) -> tuple[asyncpg.Record, str] | None:
    """Assign a charger to an existing site and announce it; returns the row and the announcement's
    id, None when the site does not exist or a newer assignment stands (see store.assign_site)."""
    async with conn.transaction():
        row = await store.assign_site(conn, charge_point_id, site_id, as_of=as_of)
        if row is None:
            return None
        return row, await enqueue_domain(conn, store.SCHEMA, ChargerSiteAssigned(
            chargePointId=charge_point_id, siteId=site_id, at=row["assigned_at"]))
