"""Sites and which site a charger belongs to: billing decides both and announces every new site
(`site.created`) and every assignment (`charger.site-assigned`) in the transaction that makes it.
A site's other fields (its time zone, location, grid limit) are read by billing alone so far, so
replacing them (`PUT /v1/sites/{siteId}`) announces nothing."""
from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.billing import store
from services.billing.models import SiteFields
from shared.domain import ChargerSiteAssigned, SiteCreated
from shared.outbox import enqueue_domain


def columns(site: SiteFields) -> list[Any]:
    """The site's fields in the order of `store.SITE_COLUMNS`."""
    coordinates = site.coordinates
    return [site.name, site.timeZone, site.address, site.city, site.postalCode, site.country,
            coordinates.latitude if coordinates else None, coordinates.longitude if coordinates else None,
            site.publish, site.maxPowerKw]


async def create(conn: asyncpg.Connection, site: SiteFields) -> tuple[asyncpg.Record, str]:
    """A new site and its announcement's id."""
    async with conn.transaction():
        row = await store.create_site(conn, columns(site))
        return row, await enqueue_domain(conn, store.SCHEMA, SiteCreated(siteId=row["site_id"], name=row["name"], at=row["created_at"]))


async def replace(conn: asyncpg.Connection, site_id: UUID, site: SiteFields) -> asyncpg.Record | None:
    """The site with its own fields replaced (its wallet stays); None when it does not exist."""
    return await store.replace_site(conn, site_id, columns(site))


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
