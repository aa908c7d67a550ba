"""The Locations module, Sender interface (mod_locations.asciidoc): one Location per site (its id
the site's id), one EVSE per charger connector (uid `<chargePointId>*<connectorId>`, one Connector
"1"... named by the OCPP connector id), every connector's `tariff_ids` the site's tariffs in force.

A site is a Location once it has the fields OCPI requires (address, city, country, coordinates);
an EVSE is listed once its connector is described (standard, format, power type, voltage and
amperage: `PUT /v1/chargers/{id}/connectors/{connectorId}`), since a Connector requires them.
EVSE status follows the connector's OCPP status (CONTRACT 12); a charger that left the CPMS's
gateway is UNKNOWN until it is back."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
from aiohttp import web

from services.ocpi import store
from services.ocpi.modules import ANSWERS, OcpiModule
from services.ocpi.pagination import page_of, page_response
from services.ocpi.push import enqueue_push
from services.ocpi.transport import BASE, ok, timestamp, unknown_location, unknown_object
from shared.app import POOL, SETTINGS
from shared.openapi import Operation

MODULE_ID = "locations"
EVSE_STATUS = {
    "Available": "AVAILABLE", "Preparing": "CHARGING", "Charging": "CHARGING", "SuspendedEV": "CHARGING",
    "SuspendedEVSE": "CHARGING", "Finishing": "CHARGING", "Reserved": "RESERVED", "Unavailable": "INOPERATIVE",
    "Faulted": "OUTOFORDER",
}
_CONNECTOR_REQUIRED = ("standard", "format", "power_type", "max_voltage", "max_amperage")


def evse_uid(charge_point_id: str, connector_id: int) -> str:
    return f"{charge_point_id}*{connector_id}"


def parse_evse_uid(uid: str) -> tuple[str, int] | None:
    charge_point_id, _, connector = uid.rpartition("*")
    if not charge_point_id or not connector.isascii() or not connector.isdigit() or len(connector) > 4:
        return None
    return charge_point_id, int(connector)


def evse_status(row: asyncpg.Record) -> str:
    """OCPP status -> OCPI EVSE status; UNKNOWN while the charger is away or has not reported."""
    if row["online"] is False or row["status"] is None:
        return "UNKNOWN"
    return EVSE_STATUS.get(row["status"], "UNKNOWN")


def is_described(row: asyncpg.Record) -> bool:
    return all(row[c] is not None for c in _CONNECTOR_REQUIRED)


def connector_object(row: asyncpg.Record, tariff_ids: list[str]) -> dict[str, Any]:
    connector: dict[str, Any] = {
        "id": "1", "standard": row["standard"], "format": row["format"], "power_type": row["power_type"],
        "max_voltage": row["max_voltage"], "max_amperage": row["max_amperage"],
    }
    if row["max_electric_power"] is not None:
        connector["max_electric_power"] = row["max_electric_power"]
    if tariff_ids:
        connector["tariff_ids"] = tariff_ids
    connector["last_updated"] = timestamp(row["last_updated"])
    return connector


def evse_object(row: asyncpg.Record, tariff_ids: list[str], *, status: str | None = None) -> dict[str, Any]:
    return {
        "uid": evse_uid(row["charge_point_id"], row["connector_id"]),
        "status": status or evse_status(row),
        "connectors": [connector_object(row, tariff_ids)],
        "last_updated": timestamp(row["last_updated"]),
    }


def location_object(settings: Any, site: asyncpg.Record, evses: list[asyncpg.Record], tariff_ids: list[str]) -> dict[str, Any]:
    location: dict[str, Any] = {
        "country_code": settings.ocpi_country_code, "party_id": settings.ocpi_party_id, "id": str(site["site_id"]),
        "publish": site["publish"], "name": site["name"], "address": site["address"], "city": site["city"],
    }
    if site["postal_code"] is not None:
        location["postal_code"] = site["postal_code"]
    location.update({
        "country": site["country"],
        "coordinates": {"latitude": site["latitude"], "longitude": site["longitude"]},
        "evses": [evse_object(e, tariff_ids) for e in evses if is_described(e)],
        "time_zone": site["time_zone"],
        "last_updated": timestamp(site["last_updated"]),
    })
    return location


async def locations_of(conn: asyncpg.Connection, settings: Any, sites: list[asyncpg.Record]) -> list[dict[str, Any]]:
    ids = [s["site_id"] for s in sites]
    evses = await store.locations.evses_of_sites(conn, ids)
    tariffs = await store.tariffs.in_force(conn, ids, datetime.now(UTC))
    return [location_object(settings, s, evses.get(s["site_id"], []), tariffs.get(s["site_id"], [])) for s in sites]


# --- Sender interface ------------------------------------------------------------------------------

def _site_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise unknown_location(text) from None


async def _location(conn: asyncpg.Connection, request: web.Request) -> asyncpg.Record:
    text = request.match_info["location_id"]
    site = await store.locations.site(conn, _site_id(text))
    if site is None:
        raise unknown_location(text)
    return site


async def list_locations(request: web.Request) -> web.Response:
    page = page_of(request)
    async with request.app[POOL].acquire() as conn:
        sites, total = await store.locations.sites_page(conn, date_from=page.date_from, date_to=page.date_to,
                                                        offset=page.offset, limit=page.limit)
        items = await locations_of(conn, request.app[SETTINGS], sites)
    return page_response(request, page, items, total)


async def get_location(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        site = await _location(conn, request)
        [location] = await locations_of(conn, request.app[SETTINGS], [site])
    return ok(location)


async def _evse(request: web.Request) -> tuple[dict[str, Any], asyncpg.Record]:
    uid = request.match_info["evse_uid"]
    async with request.app[POOL].acquire() as conn:
        site = await _location(conn, request)
        key = parse_evse_uid(uid)
        row = await store.locations.evse(conn, *key) if key else None
        if row is None or row["site_id"] != site["site_id"] or not is_described(row):
            raise unknown_object("EVSE", uid)
        tariffs = await store.tariffs.in_force(conn, [site["site_id"]], datetime.now(UTC))
    return evse_object(row, tariffs.get(site["site_id"], [])), row


async def get_evse(request: web.Request) -> web.Response:
    evse, _ = await _evse(request)
    return ok(evse)


async def get_connector(request: web.Request) -> web.Response:
    evse, _ = await _evse(request)
    connector = next((c for c in evse["connectors"] if c["id"] == request.match_info["connector_id"]), None)
    if connector is None:
        raise unknown_object("connector", request.match_info["connector_id"])
    return ok(connector)


# --- pushes to the partners' Receiver interface ---------------------------------------------------

def _path(settings: Any, site_id: UUID, *parts: str) -> str:
    return "/" + "/".join((settings.ocpi_country_code, settings.ocpi_party_id, str(site_id), *parts))


async def push_location(conn: asyncpg.Connection, settings: Any, site_id: UUID) -> None:
    """PUT the whole Location (EVSEs, connectors, tariff_ids) to every partner's Receiver, if the
    site is one."""
    site = await store.locations.site(conn, site_id)
    if site is None:
        return
    [location] = await locations_of(conn, settings, [site])
    await enqueue_push(conn, module=MODULE_ID, object_key=f"location:{site_id}", method="PUT", path=_path(settings, site_id),
                       body=location)


async def push_evse(conn: asyncpg.Connection, settings: Any, row: asyncpg.Record, site_id: UUID, *,
                    status: str | None = None) -> None:
    """PUT one EVSE of a Location (`status`: instead of its own, REMOVED when it left the site)."""
    if not is_described(row) or await store.locations.site(conn, site_id) is None:
        return
    tariffs = await store.tariffs.in_force(conn, [site_id], datetime.now(UTC))
    evse = evse_object(row, tariffs.get(site_id, []), status=status)
    await enqueue_push(conn, module=MODULE_ID, object_key=f"location:{site_id}", method="PUT",
                       path=_path(settings, site_id, evse["uid"]), body=evse)


async def push_evse_status(conn: asyncpg.Connection, settings: Any, row: asyncpg.Record) -> None:
    """PATCH an EVSE's status (and last_updated, as a PATCH must carry: mod_locations, Receiver PATCH)."""
    if not is_described(row) or row["site_id"] is None or await store.locations.site(conn, row["site_id"]) is None:
        return
    await enqueue_push(conn, module=MODULE_ID, object_key=f"location:{row['site_id']}", method="PATCH",
                       path=_path(settings, row["site_id"], evse_uid(row["charge_point_id"], row["connector_id"])),
                       body={"status": evse_status(row), "last_updated": timestamp(row["last_updated"])})


_LOCATION = f"{BASE}/locations/{{location_id}}"
MODULE = OcpiModule(MODULE_ID, ("SENDER",), (
    Operation("GET", f"{BASE}/locations", list_locations, "OCPI: every Location (paginated)", "ocpi", ANSWERS),
    Operation("GET", _LOCATION, get_location, "OCPI: one Location", "ocpi", ANSWERS),
    Operation("GET", f"{_LOCATION}/{{evse_uid}}", get_evse, "OCPI: one EVSE of a Location", "ocpi", ANSWERS),
    Operation("GET", f"{_LOCATION}/{{evse_uid}}/{{connector_id}}", get_connector, "OCPI: one Connector of an EVSE", "ocpi", ANSWERS),
))
