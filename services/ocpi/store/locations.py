"""SQL of the copies an OCPI Location is made of: sites, which site each charger is at, whether
it is connected, and its connectors' statuses and specs. Every write keeps the newest fact (by
the time its message carries) and says whether the copy changed."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from shared.domain import ConnectorSpecsChanged, SiteChanged

# A site is a Location once it has what OCPI requires of one (mod_locations, Location object).
_PUBLISHABLE = "address IS NOT NULL AND city IS NOT NULL AND country IS NOT NULL AND latitude IS NOT NULL"


async def record_site(conn: asyncpg.Connection, site: SiteChanged) -> bool:
    done = await conn.execute(
        """
        INSERT INTO ocpi.sites AS s (site_id, name, time_zone, address, city, postal_code, country, latitude, longitude,
                                     publish, changed_at, last_updated)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, clock_timestamp())
        ON CONFLICT (site_id) DO UPDATE SET name = EXCLUDED.name, time_zone = EXCLUDED.time_zone, address = EXCLUDED.address,
            city = EXCLUDED.city, postal_code = EXCLUDED.postal_code, country = EXCLUDED.country, latitude = EXCLUDED.latitude,
            longitude = EXCLUDED.longitude, publish = EXCLUDED.publish, changed_at = EXCLUDED.changed_at,
            last_updated = clock_timestamp()
        WHERE EXCLUDED.changed_at > s.changed_at
        """,
        site.siteId, site.name, site.timeZone, site.address, site.city, site.postalCode, site.country, site.latitude,
        site.longitude, site.publish, site.at,
    )
    return done != "INSERT 0 0"


async def touch_sites(conn: asyncpg.Connection, site_ids: Sequence[UUID]) -> None:
    """Something in these Locations changed (an EVSE, a tariff): their last_updated is now."""
    await conn.execute("UPDATE ocpi.sites SET last_updated = clock_timestamp() WHERE site_id = ANY($1::uuid[])", list(site_ids))


async def record_charger_site(conn: asyncpg.Connection, charge_point_id: str, site_id: UUID, at: datetime) -> tuple[bool, UUID | None]:
    """(whether the charger's site changed, the site it was at before)."""
    before = await conn.fetchrow("SELECT site_id, site_at FROM ocpi.chargers WHERE charge_point_id = $1 FOR UPDATE", charge_point_id)
    if before is not None and before["site_at"] is not None and before["site_at"] >= at:
        return False, before["site_id"]
    await conn.execute(
        "INSERT INTO ocpi.chargers (charge_point_id, site_id, site_at) VALUES ($1, $2, $3) "
        "ON CONFLICT (charge_point_id) DO UPDATE SET site_id = EXCLUDED.site_id, site_at = EXCLUDED.site_at",
        charge_point_id, site_id, at,
    )
    old = before["site_id"] if before is not None else None
    return old != site_id, old


async def record_connection(conn: asyncpg.Connection, charge_point_id: str, online: bool, at: datetime) -> bool:
    done = await conn.execute(
        """
        INSERT INTO ocpi.chargers AS c (charge_point_id, online, connection_at) VALUES ($1, $2, $3)
        ON CONFLICT (charge_point_id) DO UPDATE SET online = EXCLUDED.online, connection_at = EXCLUDED.connection_at
        WHERE c.connection_at IS NULL OR EXCLUDED.connection_at > c.connection_at
        """,
        charge_point_id, online, at,
    )
    return done != "INSERT 0 0"


async def record_status(conn: asyncpg.Connection, charge_point_id: str, connector_id: int, *, status: str, error_code: str,
                        at: datetime, order: int, event_id: str) -> bool:
    done = await conn.execute(
        """
        INSERT INTO ocpi.connectors AS c (charge_point_id, connector_id, status, error_code, status_at, status_order,
                                          status_event_id, last_updated)
        VALUES ($1, $2, $3, $4, $5, $6, $7, clock_timestamp())
        ON CONFLICT (charge_point_id, connector_id) DO UPDATE SET status = EXCLUDED.status, error_code = EXCLUDED.error_code,
            status_at = EXCLUDED.status_at, status_order = EXCLUDED.status_order, status_event_id = EXCLUDED.status_event_id,
            last_updated = clock_timestamp()
        WHERE c.status_at IS NULL
           OR (EXCLUDED.status_at, EXCLUDED.status_order, EXCLUDED.status_event_id) > (c.status_at, c.status_order, c.status_event_id)
        """,
        charge_point_id, connector_id, status, error_code, at, order, event_id,
    )
    return done != "INSERT 0 0"


async def record_specs(conn: asyncpg.Connection, specs: ConnectorSpecsChanged) -> bool:
    done = await conn.execute(
        """
        INSERT INTO ocpi.connectors AS c (charge_point_id, connector_id, standard, format, power_type, max_voltage,
                                          max_amperage, max_electric_power, specs_at, last_updated)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, clock_timestamp())
        ON CONFLICT (charge_point_id, connector_id) DO UPDATE SET standard = EXCLUDED.standard, format = EXCLUDED.format,
            power_type = EXCLUDED.power_type, max_voltage = EXCLUDED.max_voltage, max_amperage = EXCLUDED.max_amperage,
            max_electric_power = EXCLUDED.max_electric_power, specs_at = EXCLUDED.specs_at, last_updated = clock_timestamp()
        WHERE c.specs_at IS NULL OR EXCLUDED.specs_at > c.specs_at
        """,
        specs.chargePointId, specs.connectorId, specs.standard, specs.format, specs.powerType, specs.maxVoltage,
        specs.maxAmperage, specs.maxElectricPower, specs.at,
    )
    return done != "INSERT 0 0"


_EVSES = """
    SELECT k.*, c.site_id, c.online FROM ocpi.connectors k JOIN ocpi.chargers c USING (charge_point_id)
"""


async def evses_of_sites(conn: asyncpg.Connection, site_ids: Sequence[UUID]) -> dict[UUID, list[asyncpg.Record]]:
    rows = await conn.fetch(f"{_EVSES} WHERE c.site_id = ANY($1::uuid[]) ORDER BY k.charge_point_id, k.connector_id",
                            list(site_ids))
    found: dict[UUID, list[asyncpg.Record]] = {}
    for row in rows:
        found.setdefault(row["site_id"], []).append(row)
    return found


async def evses_of_charger(conn: asyncpg.Connection, charge_point_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(f"{_EVSES} WHERE k.charge_point_id = $1 ORDER BY k.connector_id", charge_point_id)


async def connectors_of_charger(conn: asyncpg.Connection, charge_point_id: str) -> list[asyncpg.Record]:
    """Its connectors whatever its site (with `online`), for the EVSEs it leaves at a site."""
    return await conn.fetch(
        "SELECT k.*, c.online FROM ocpi.connectors k LEFT JOIN ocpi.chargers c USING (charge_point_id) "
        "WHERE k.charge_point_id = $1 ORDER BY k.connector_id", charge_point_id)


async def evse(conn: asyncpg.Connection, charge_point_id: str, connector_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(f"{_EVSES} WHERE k.charge_point_id = $1 AND k.connector_id = $2", charge_point_id, connector_id)


async def site(conn: asyncpg.Connection, site_id: UUID, *, publishable: bool = True) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT * FROM ocpi.sites WHERE site_id = $1{f' AND {_PUBLISHABLE}' if publishable else ''}",
                               site_id)


async def sites_page(conn: asyncpg.Connection, *, date_from: datetime | None, date_to: datetime | None, offset: int,
                     limit: int) -> tuple[list[asyncpg.Record], int]:
    """Publishable sites by last_updated, with how many match."""
    where = f"{_PUBLISHABLE} AND ($1::timestamptz IS NULL OR last_updated >= $1) AND ($2::timestamptz IS NULL OR last_updated < $2)"
    total = await conn.fetchval(f"SELECT count(*) FROM ocpi.sites WHERE {where}", date_from, date_to)
    rows = await conn.fetch(f"SELECT * FROM ocpi.sites WHERE {where} ORDER BY last_updated, site_id OFFSET $3 LIMIT $4",
                            date_from, date_to, offset, limit)
    return rows, total
