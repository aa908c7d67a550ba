"""The Tariffs module, Sender interface (mod_tariffs.asciidoc): every site tariff as its OCPI
Tariff, its id the tariff's id (stable), as billing wrote it (section 9 of the contract). A tariff
its site replaced ends where the next begins (`end_date_time`), unless it said an earlier end.
Prices travel as JSON numbers, as OCPI's `number` type is (billing keeps them as decimal strings,
exact; a price of at most 4 decimals is written back to the same digits)."""
from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
from aiohttp import web

from services.ocpi import store
from services.ocpi.modules import ANSWERS, OcpiModule
from services.ocpi.pagination import page_of, page_response
from services.ocpi.push import enqueue_push
from services.ocpi.transport import BASE, timestamp
from shared.app import POOL, SETTINGS
from shared.openapi import Operation

MODULE_ID = "tariffs"
_NUMBERS = frozenset({"price", "vat", "min_kwh", "max_kwh", "min_current", "max_current", "min_power", "max_power",
                      "excl_vat", "incl_vat"})


def _numbers(value: Any, key: str | None = None) -> Any:
    """Billing's decimal strings as JSON numbers where OCPI has a number."""
    if isinstance(value, dict):
        return {k: _numbers(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    if key in _NUMBERS and isinstance(value, str):
        number = Decimal(value)
        return int(number) if number == number.to_integral_value() else float(number)
    return value


def tariff_object(settings: Any, row: asyncpg.Record) -> dict[str, Any]:
    ocpi = _numbers(row["ocpi"])
    tariff: dict[str, Any] = {"country_code": settings.ocpi_country_code, "party_id": settings.ocpi_party_id,
                              "id": str(row["tariff_id"]), **ocpi}
    tariff["currency"] = row["currency"]
    if row["active_until"] is not None:
        own_end = tariff.get("end_date_time")
        until = timestamp(row["active_until"])
        tariff["end_date_time"] = min(own_end, until) if own_end else until
    tariff["last_updated"] = timestamp(row["last_updated"])
    return tariff


async def list_tariffs(request: web.Request) -> web.Response:
    page = page_of(request)
    settings = request.app[SETTINGS]
    async with request.app[POOL].acquire() as conn:
        rows, total = await store.tariffs.page(conn, date_from=page.date_from, date_to=page.date_to, offset=page.offset,
                                               limit=page.limit)
    return page_response(request, page, [tariff_object(settings, r) for r in rows], total)


async def push_tariff(conn: asyncpg.Connection, settings: Any, tariff_id: UUID) -> None:
    """PUT the Tariff to every partner's Receiver (`/{country_code}/{party_id}/{tariff_id}`)."""
    row = await store.tariffs.get(conn, tariff_id)
    if row is None:
        return
    await enqueue_push(conn, module=MODULE_ID, object_key=f"tariff:{tariff_id}", method="PUT",
                       path=f"/{settings.ocpi_country_code}/{settings.ocpi_party_id}/{tariff_id}", body=tariff_object(settings, row))


MODULE = OcpiModule(MODULE_ID, ("SENDER",), (
    Operation("GET", f"{BASE}/tariffs", list_tariffs, "OCPI: every Tariff (paginated)", "ocpi", ANSWERS),
))
