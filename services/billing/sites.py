"""Sites, their tariffs, and which site a charger belongs to: billing decides them and announces
every new site (`site.created`), every site's fields as they are created or replaced
(`site.changed`: roaming publishes them as OCPI Locations), a site's grid limit
(`site.power-limit-changed`: sessions shares it) when a site is created with one or replaced,
every tariff created or closed (`tariff.changed`) and every assignment (`charger.site-assigned`),
each in the transaction that makes it."""
from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.billing import store
from services.billing.models import SiteFields
from shared.domain import ChargerSiteAssigned, SiteChanged, SiteCreated, SitePowerLimitChanged, TariffChanged
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
        await enqueue_domain(conn, store.SCHEMA, site_changed(row))
        announced = [await enqueue_domain(conn, store.SCHEMA, SiteCreated(siteId=row["site_id"], name=row["name"], at=row["created_at"]))]
        if row["max_power_kw"] is not None:
            announced.append(await _announce_limit(conn, row))
        return row, announced


async def replace(conn: asyncpg.Connection, site_id: UUID, site: SiteFields) -> tuple[asyncpg.Record, str] | None:
    """The site with its own fields replaced (its wallet stays) and its limit's announcement id;
    None when it does not exist."""
    async with conn.transaction():
        row = await store.replace_site(conn, site_id, columns(site))
        if row is None:
            return None
        await enqueue_domain(conn, store.SCHEMA, site_changed(row))
        return row, await _announce_limit(conn, row)


async def _announce_limit(conn: asyncpg.Connection, row: asyncpg.Record) -> str:
    return await enqueue_domain(conn, store.SCHEMA, SitePowerLimitChanged(
        siteId=row["site_id"], maxPowerKw=row["max_power_kw"], at=row["updated_at"]))


def site_changed(row: asyncpg.Record) -> SiteChanged:
    return SiteChanged(siteId=row["site_id"], name=row["name"], timeZone=row["time_zone"], address=row["address"],
                       city=row["city"], postalCode=row["postal_code"], country=row["country"], latitude=row["latitude"],
                       longitude=row["longitude"], publish=row["publish"], at=row["updated_at"])


async def create_tariff(conn: asyncpg.Connection, site_id: UUID, price: Any, currency: str, ocpi: dict) -> asyncpg.Record | None:
    """The site's new tariff (the previous one closed at its start), both announced; None when the
    site does not exist."""
    async with conn.transaction():
        row = await store.create_tariff(conn, site_id, price, currency, ocpi)
        if row is None:
            return None
        for tariff in (*await store.tariffs_closed_at(conn, site_id, row["active_from"]), row):
            await enqueue_domain(conn, store.SCHEMA, tariff_changed(tariff))
        return row


def tariff_changed(row: asyncpg.Record) -> TariffChanged:
    return TariffChanged(tariffId=row["tariff_id"], siteId=row["site_id"], currency=row["currency"], ocpi=row["ocpi"],
                         activeFrom=row["active_from"], activeUntil=row["active_until"],
                         at=max(row["created_at"], row["active_until"] or row["created_at"]))


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
