"""Sites and which site a charger belongs to: billing decides both and announces every new site
(`site.created`) and every assignment (`charger.site-assigned`) in the transaction that makes it,
and a site's grid limit (`site.power-limit-changed`) whenever a site is created with one or
replaced (`PUT /v1/sites/{siteId}`): the sessions service shares it. A site's other fields (its
time zone, location) are read by billing alone so far."""
from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.billing import store
from services.billing.models import SiteFields
from shared.domain import ChargerSiteAssigned, SiteCreated, SitePowerLimitChanged
from shared.outbox import enqueue_domain


def columns(site: SiteFields) -> list[Any]:
    """The site's fields in the order of `store.SITE_COLUMNS`."""
    coordinates = site.coordinates
    return [site.name, site.timeZone, site.address, site.city, site.postalCode, site.country,
            coordinates.latitude if coordinates else None, coordinates.longitude if coordinates else None,
            site.publish, site.maxPowerKw]


async def create(conn: asyncpg.Connection, site: SiteFields) -> tuple[asyncpg.Record, list[str]]:
    """A new site and its announcements' ids."""
    async with conn.transaction():
        row = await store.create_site(conn, columns(site))
        announced = [await enqueue_domain(conn, store.SCHEMA, SiteCreated(siteId=row["site_id"], name=row["name"], at=row["created_at"]))]
        if row["max_power_kw"] is not None:
            announced.append(await _announce_limit(conn, row))
        return row, announced


async def replace(conn: asyncpg.Connection, site_id: UUID, site: SiteFields) -> tuple[asyncpg.Record, str] | None:
    """The site with its own fields replaced (its wallet stays) and its limit's announcement id;
    None when it does not exist."""
    async with conn.transaction():
        row = await store.replace_site(conn, site_id, columns(site))
        return None if row is None else (row, await _announce_limit(conn, row))


async def _announce_limit(conn: asyncpg.Connection, row: asyncpg.Record) -> str:
    return await enqueue_domain(conn, store.SCHEMA, SitePowerLimitChanged(
        siteId=row["site_id"], maxPowerKw=row["max_power_kw"], at=row["updated_at"]))


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
