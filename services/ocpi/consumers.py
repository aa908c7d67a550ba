"""Queues the OCPI service consumes: its copy of the operators (for /v1/ocpi), and the domain
messages of what it publishes as Locations and Tariffs (sites, tariffs, which site a charger is
at, connectors' statuses and specs, chargers' connections) and as partners' Sessions (their
progress, end and prices). Each change to the copy enqueues its
push to the partners in the same transaction."""
from __future__ import annotations

import asyncpg

from services.ocpi import commands, locations, sessions, store, tariffs
from services.ocpi.push import wakes_push
from shared.config import OcpiSettings
from shared.consumer import Message
from shared.domain import (
    ChargerConnectionChanged,
    ChargerSiteAssigned,
    ConnectorSpecsChanged,
    ConnectorStatusReported,
    SiteChanged,
    TariffChanged,
)
from shared.operators import copy_of_operators
from shared.service import Consumes
from shared.topology import OCPI_COMMAND_RESULTS, OCPI_LOCATIONS, OCPI_OPERATORS, OCPI_SESSIONS


async def site_changed(conn: asyncpg.Connection, message: Message, settings: OcpiSettings) -> None:
    site = SiteChanged.model_validate(message.body)
    if await store.locations.record_site(conn, site):
        await locations.push_location(conn, settings, site.siteId)


async def tariff_changed(conn: asyncpg.Connection, message: Message, settings: OcpiSettings) -> None:
    """The Tariff, then its site's Location: the connectors' tariff_ids may have changed."""
    tariff = TariffChanged.model_validate(message.body)
    if await store.tariffs.record(conn, tariff):
        await tariffs.push_tariff(conn, settings, tariff.tariffId)
        await store.locations.touch_sites(conn, [tariff.siteId])
        await locations.push_location(conn, settings, tariff.siteId)


async def charger_site_assigned(conn: asyncpg.Connection, message: Message, settings: OcpiSettings) -> None:
    """The EVSEs leave the old site's Location (REMOVED) and the new site's Location is sent whole."""
    assigned = ChargerSiteAssigned.model_validate(message.body)
    changed, old_site = await store.locations.record_charger_site(conn, assigned.chargePointId, assigned.siteId, assigned.at)
    if not changed:
        return
    if old_site is not None:
        await store.locations.touch_sites(conn, [old_site])
        for row in await store.locations.connectors_of_charger(conn, assigned.chargePointId):
            await locations.push_evse(conn, settings, row, old_site, status="REMOVED")
    await store.locations.touch_sites(conn, [assigned.siteId])
    await locations.push_location(conn, settings, assigned.siteId)


async def connector_status(conn: asyncpg.Connection, message: Message, settings: OcpiSettings) -> None:
    reported = ConnectorStatusReported.model_validate(message.body)
    before = await store.locations.evse(conn, reported.chargePointId, reported.connectorId)
    if not await store.locations.record_status(conn, reported.chargePointId, reported.connectorId, status=reported.status,
                                               error_code=reported.errorCode, at=reported.at, order=reported.receiveOrder,
                                               event_id=reported.eventId):
        return
    await _evse_status_changed(conn, settings, [before], reported.chargePointId)


async def connection_changed(conn: asyncpg.Connection, message: Message, settings: OcpiSettings) -> None:
    changed = ChargerConnectionChanged.model_validate(message.body)
    before = await store.locations.evses_of_charger(conn, changed.chargePointId)
    if await store.locations.record_connection(conn, changed.chargePointId, changed.online, changed.at):
        await _evse_status_changed(conn, settings, before, changed.chargePointId)


async def _evse_status_changed(conn: asyncpg.Connection, settings: OcpiSettings, before: list, charge_point_id: str) -> None:
    """PATCH the status of each of the charger's EVSEs whose OCPI status is not what it was."""
    was = {(r["charge_point_id"], r["connector_id"]): locations.evse_status(r) for r in before if r is not None}
    for row in await store.locations.evses_of_charger(conn, charge_point_id):
        if was.get((row["charge_point_id"], row["connector_id"])) != locations.evse_status(row):
            await store.locations.touch_sites(conn, [row["site_id"]])
            await locations.push_evse_status(conn, settings, row)


async def connector_specs(conn: asyncpg.Connection, message: Message, settings: OcpiSettings) -> None:
    specs = ConnectorSpecsChanged.model_validate(message.body)
    if not await store.locations.record_specs(conn, specs):
        return
    row = await store.locations.evse(conn, specs.chargePointId, specs.connectorId)
    if row is not None and row["site_id"] is not None:
        await store.locations.touch_sites(conn, [row["site_id"]])
        await locations.push_evse(conn, settings, row, row["site_id"])


_HANDLERS = {
    SiteChanged.routing_key: site_changed,
    TariffChanged.routing_key: tariff_changed,
    ChargerSiteAssigned.routing_key: charger_site_assigned,
    ConnectorStatusReported.routing_key: connector_status,
    ConnectorSpecsChanged.routing_key: connector_specs,
    ChargerConnectionChanged.routing_key: connection_changed,
}


async def apply_location_facts(conn: asyncpg.Connection, messages: list[Message], *, settings: OcpiSettings) -> None:
    for message in messages:
        handler = _HANDLERS.get(message.routing_key)
        if handler is not None:
            await handler(conn, message, settings)


CONSUMERS = (
    copy_of_operators("ocpi", OCPI_OPERATORS),
    Consumes(OCPI_LOCATIONS, apply_location_facts, after_commit=wakes_push, takes_settings=True),
    # The outcomes of partners' commands: their CommandResults (services/ocpi/commands.py).
    Consumes(OCPI_COMMAND_RESULTS, commands.apply_results, after_commit=wakes_push),
    # Partners' sessions: their progress, end and prices (sessions and billing), pushed as Sessions.
    Consumes(OCPI_SESSIONS, sessions.apply_and_push, after_commit=wakes_push, takes_settings=True),
)
