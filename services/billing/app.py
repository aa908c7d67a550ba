"""Billing: sites, their tariffs and payout wallets, which charger belongs to which site, the
price of every finalized session and its settlement. Every route is listed in `setup`."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from uuid import UUID
from zoneinfo import ZoneInfo

import pydantic
from aiohttp import web

from services.billing import metrics, quotes, settlements, sites, store
from services.billing.models import (
    AssignSite,
    CdrQuote,
    CreateTariff,
    ListQuery,
    MarkFailed,
    MarkSubmitted,
    SettlementQuery,
    SetWallet,
    SimpleQuote,
    SiteFields,
)
from services.billing.money import to_minor_units
from services.billing.ocpi import OcpiTariff
from services.billing.responses import Quote, Settlement, Site, SiteAssignment, Tariff
from shared.app import POOL, SETTINGS, copies_applied, entity_before
from shared.csv_export import CSV_BODY, stream_csv, wants_csv
from shared.domain import SettlementStatus
from shared.errors import DomainError
from shared.events import ChargePointId
from shared.http import Problem, found, json_response, parse_body, parse_query, path_uuid, read_decimal_json, validated
from shared.openapi import Body, Fragment, Operation, page_of, ref
from shared.pagination import decode_cursor, page
from shared.topology import SESSIONS_BILLING, SESSIONS_REGISTRY

log = logging.getLogger(__name__)

SCHEMA = store.SCHEMA
GAUGE_REFRESH_SECONDS = 5.0
CONFIRMED_REFRESH_SECONDS = 60.0
CONFIRMED_CHANGED = web.AppKey("confirmed_changed", asyncio.Event)
_charge_point_id = pydantic.TypeAdapter(ChargePointId)


def _cursor(query) -> tuple | None:
    return decode_cursor(query.cursor) if query.cursor else None


async def _site_or_404(conn, request: web.Request):
    site_id = path_uuid(request, "siteId", "site")
    site = await store.get_site(conn, site_id)
    site = found(site, "site", f"no site {site_id}")
    return site


# Sites, tariffs, wallets

async def create_site(request: web.Request) -> web.Response:
    body = await parse_body(request, SiteFields, decimals=True)
    async with request.app[POOL].acquire() as conn:
        row, announced = await sites.create(conn, body)
    await copies_applied(request.app, SCHEMA, announced, keeper=SESSIONS_REGISTRY)  # filters by this site work at once
    return json_response(Site.from_row(row), status=201)


async def replace_site(request: web.Request) -> web.Response:
    """The site's own fields as given (a field left out takes its default); its wallet stays."""
    site_id = path_uuid(request, "siteId", "site")
    body = await parse_body(request, SiteFields, decimals=True)
    async with request.app[POOL].acquire() as conn:
        row, announced = found(await sites.replace(conn, site_id, body), "site", f"no site {site_id}")
    await copies_applied(request.app, SCHEMA, [announced], keeper=SESSIONS_REGISTRY)  # its load follows the limit at once
    return json_response(Site.from_row(row))


async def list_sites(request: web.Request) -> web.Response:
    query = parse_query(request, ListQuery)
    async with request.app[POOL].acquire() as conn:
        rows = await store.list_sites(conn, limit=query.limit, cursor=_cursor(query))
    return json_response(page(rows, query.limit, Site.from_row, lambda r: (r["created_at"], r["site_id"])))


async def get_site(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        return json_response(Site.from_row(await _site_or_404(conn, request)))


async def set_wallet(request: web.Request) -> web.Response:
    site_id = path_uuid(request, "siteId", "site")
    body = await parse_body(request, SetWallet)
    async with request.app[POOL].acquire() as conn:
        row = await store.set_wallet(conn, site_id, body.wallet)
    row = found(row, "site", f"no site {site_id}")
    return json_response(Site.from_row(row))


async def create_tariff(request: web.Request) -> web.Response:
    """`{"pricePerKwh", "currency"}`, or an OCPI 2.2.1 Tariff (it has `elements`)."""
    site_id = path_uuid(request, "siteId", "site")
    settings = request.app[SETTINGS]
    data = await read_decimal_json(request)
    if isinstance(data, dict) and "elements" in data:
        tariff = validated(OcpiTariff, data)
    else:
        body = validated(CreateTariff, data, context={"max_price_per_kwh": settings.max_price_per_kwh})
        tariff = OcpiTariff.per_kwh(body.pricePerKwh, body.currency or settings.default_currency)
    ocpi = tariff.model_dump(mode="json", exclude_none=True)
    async with request.app[POOL].acquire() as conn:
        row = await sites.create_tariff(conn, site_id, tariff.only_price_per_kwh(), tariff.currency, ocpi)
    row = found(row, "site", f"no site {site_id}")
    return json_response(Tariff.from_row(row), status=201)


async def quote(request: web.Request) -> web.Response:
    """What the tariff charges for a session given as an OCPI CDR's periods, or as `{"startedAt",
    "endedAt", "energyWh"}`, times of day read in `timeZone` or else the tariff's site's; nothing
    is stored."""
    tariff_id = path_uuid(request, "tariffId", "tariff")
    data = await read_decimal_json(request)
    asked = validated(CdrQuote if isinstance(data, dict) and "charging_periods" in data else SimpleQuote, data)
    async with request.app[POOL].acquire() as conn:
        row = found(await store.tariff(conn, tariff_id), "tariff", f"no tariff {tariff_id}")
    zone = ZoneInfo(asked.timeZone or row["time_zone"])
    return json_response(quotes.totals(OcpiTariff.model_validate(row["ocpi"]), asked, zone))


async def list_tariffs(request: web.Request) -> web.Response:
    query = parse_query(request, ListQuery)
    async with request.app[POOL].acquire() as conn:
        site = await _site_or_404(conn, request)
        rows = await store.list_tariffs(conn, site["site_id"], limit=query.limit, cursor=_cursor(query))
    return json_response(page(rows, query.limit, Tariff.from_row, lambda r: (r["active_from"], r["tariff_id"])))


async def assign_site(request: web.Request) -> web.Response:
    """Billing may not have heard of the charger yet: any well-formed id is accepted."""
    try:
        charge_point_id = _charge_point_id.validate_python(request.match_info["chargePointId"])
    except pydantic.ValidationError:
        raise Problem(400, "Invalid request", "the charge point id is not valid",
                      errors=[{"loc": ["path", "chargePointId"], "msg": "1 to 64 letters, digits or ._:*@+-"}]) from None
    body = await parse_body(request, AssignSite)
    async with request.app[POOL].acquire() as conn:
        written = await sites.assign(conn, charge_point_id, body.siteId)
    written = found(written, "site", f"no site {body.siteId}")
    row, announced = written
    await copies_applied(request.app, SCHEMA, [announced], keeper=SESSIONS_REGISTRY)  # GET /v1/chargers/{id} shows it
    return json_response(SiteAssignment.from_row(row))


# Settlements

async def list_settlements(request: web.Request) -> web.StreamResponse:
    """Settlements newest first, filtered; all of them as CSV with `Accept: text/csv`."""
    query = parse_query(request, SettlementQuery)
    filters = {"status": query.status, "site_id": query.siteId, "session_id": query.sessionId, "charge_point_id": query.chargePointId}
    async with request.app[POOL].acquire() as conn:
        if query.siteId is not None and await store.get_site(conn, query.siteId) is None:
            raise DomainError(f"no site {query.siteId}", title="Unknown site",
                              errors=[{"loc": ["query", "siteId"], "msg": f"no site {query.siteId}"}])
        if wants_csv(request):
            async with conn.transaction():
                return await stream_csv(request, store.every_settlement(conn, filters), columns=list(Settlement.model_fields),
                                        render=Settlement.from_row, filename="settlements.csv")
        rows = await store.settlements_page(conn, filters, cursor=_cursor(query), limit=query.limit)
    return json_response(page(rows, query.limit, Settlement.from_row, lambda r: (r["created_at"], r["settlement_id"])))


async def get_settlement(request: web.Request) -> web.Response:
    settlement_id = path_uuid(request, "settlementId", "settlement")
    async with request.app[POOL].acquire() as conn:
        row = await store.get_settlement(conn, settlement_id)
    row = found(row, "settlement", f"no settlement {settlement_id}")
    return json_response(Settlement.from_row(row))


async def _transition(request: web.Request, wanted: settlements.Request) -> web.Response:
    """Lock the settlement, check the graph, move it and announce it, in one transaction; answer
    once the session's copy of the status is applied."""
    settlement_id = path_uuid(request, "settlementId", "settlement")
    async with request.app[POOL].acquire() as conn, conn.transaction():
        current = await store.lock_settlement(conn, settlement_id)
        current = found(current, "settlement", f"no settlement {settlement_id}")
        try:
            noop = settlements.is_noop(current, wanted)
        except settlements.SettlementConflict:
            metrics.TRANSITIONS.labels(wanted.status, "conflict").inc()
            raise
        row, announced = (current, None) if noop else await settlements.move(conn, settlement_id, wanted)
    metrics.TRANSITIONS.labels(wanted.status, "noop" if noop else "applied").inc()
    if announced is not None:
        # The session obeys "money has moved" once this answers (a force finalize is 409 from then on).
        await copies_applied(request.app, SCHEMA, [announced], keeper=SESSIONS_BILLING)
        if wanted.status == SettlementStatus.CONFIRMED:
            metrics.AMOUNT_SETTLED.labels(row["currency"]).inc(to_minor_units(row["amount"], row["currency"]))
            if CONFIRMED_CHANGED in request.app:
                request.app[CONFIRMED_CHANGED].set()
    return json_response(Settlement.from_row(row))


async def mark_submitted(request: web.Request) -> web.Response:
    body = await parse_body(request, MarkSubmitted, decimals=True)
    return await _transition(request, settlements.Request(
        SettlementStatus.SUBMITTED, chain=body.chain, tx_hash=body.txHash, external_ref=body.externalRef,
        amount=body.amount, currency=body.currency,
    ))


async def mark_confirmed(request: web.Request) -> web.Response:
    return await _transition(request, settlements.Request(SettlementStatus.CONFIRMED))


async def mark_failed(request: web.Request) -> web.Response:
    body = await parse_body(request, MarkFailed)
    return await _transition(request, settlements.Request(SettlementStatus.FAILED, error=body.error))


async def settlement_gauge(app: web.Application) -> AsyncIterator[None]:
    """Settlements by status and the age of the oldest in each, read from the database: right
    whichever process changed them. The open statuses (a working set) are read every few seconds;
    Confirmed, which only grows and whose count is a read of every settlement ever made, once a
    minute, or at once after this process confirmed one."""
    confirmed_changed = app[CONFIRMED_CHANGED] = asyncio.Event()

    async def refresh() -> None:
        confirmed_read_at = float("-inf")
        loop = asyncio.get_running_loop()
        while True:
            wanted = [s for s in SettlementStatus if s != SettlementStatus.CONFIRMED]
            if confirmed_changed.is_set() or loop.time() - confirmed_read_at >= CONFIRMED_REFRESH_SECONDS:
                wanted.append(SettlementStatus.CONFIRMED)
            try:
                async with app[POOL].acquire() as conn:
                    counts = await store.settlement_counts(conn, wanted)
                if SettlementStatus.CONFIRMED in wanted:
                    confirmed_changed.clear()
                    confirmed_read_at = loop.time()
                for status in wanted:
                    count, oldest = counts.get(status, (0, 0.0))
                    metrics.SETTLEMENTS.labels(status).set(count)
                    metrics.OLDEST_SETTLEMENT.labels(status).set(oldest)
            except Exception:
                log.debug("could not count settlements", exc_info=True)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(GAUGE_REFRESH_SECONDS):
                    await confirmed_changed.wait()

    task = asyncio.create_task(refresh(), name="billing:settlement-gauge")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


# What a write changes, as it was (the audit trail's `before`).

_site_before = entity_before("siteId", store.get_site, Site, key=UUID)
_assignment_before = entity_before("chargePointId", store.charger_site, SiteAssignment)
_settlement_before = entity_before("settlementId", store.get_settlement, Settlement, key=UUID)


# Every route of the service: its handler, request and response models, auth and errors.
_SETTLEMENT = "/v1/settlements/{settlementId}"
API = Fragment("billing", (
    Operation("POST", "/v1/sites", create_site, "Create a site", "finance", {201: Site}, body=SiteFields),
    Operation("GET", "/v1/sites", list_sites, "Sites, newest first", "viewer", {200: page_of(Site)}, query=ListQuery),
    Operation("GET", "/v1/sites/{siteId}", get_site, "One site", "viewer", {200: Site}),
    Operation("PUT", "/v1/sites/{siteId}", replace_site, "Replace a site's own fields (name, time zone, location, grid limit)",
              "finance", {200: Site}, body=SiteFields, before=_site_before),
    Operation("POST", "/v1/sites/{siteId}/tariffs", create_tariff, "Set the site's tariff (the previous one is kept as history)", "finance",
              {201: Tariff}, body=Body({"anyOf": [ref(CreateTariff), ref(OcpiTariff)]}, (CreateTariff, OcpiTariff))),
    Operation("POST", "/v1/tariffs/{tariffId}/quote", quote, "What a tariff charges for a session (OCPI CDR totals)", "viewer",
              {200: Quote}, body=Body({"anyOf": [ref(CdrQuote), ref(SimpleQuote)]}, (CdrQuote, SimpleQuote))),
    Operation("GET", "/v1/sites/{siteId}/tariffs", list_tariffs, "The site's tariffs, newest first", "viewer",
              {200: page_of(Tariff)}, query=ListQuery),
    Operation("POST", "/v1/sites/{siteId}/wallet", set_wallet, "Set the site's payout wallet", "finance", {200: Site}, body=SetWallet,
              before=_site_before),
    Operation("PUT", "/v1/chargers/{chargePointId}/site", assign_site, "Assign a charger to a site", "operator",
              {200: SiteAssignment}, body=AssignSite, before=_assignment_before),
    Operation("GET", "/v1/settlements", list_settlements, "Settlements, newest first (Accept: text/csv: all of them)", "viewer",
              {200: (page_of(Settlement), CSV_BODY)}, query=SettlementQuery),
    Operation("GET", _SETTLEMENT, get_settlement, "One settlement", "viewer", {200: Settlement}),
    Operation("POST", f"{_SETTLEMENT}/submitted", mark_submitted, "Mark a settlement submitted to a chain", "finance",
              {200: Settlement}, body=MarkSubmitted, errors=(409,), before=_settlement_before),
    Operation("POST", f"{_SETTLEMENT}/confirmed", mark_confirmed, "Mark a settlement confirmed", "finance", {200: Settlement}, errors=(409,),
              before=_settlement_before),
    Operation("POST", f"{_SETTLEMENT}/failed", mark_failed, "Mark a settlement failed", "finance", {200: Settlement}, body=MarkFailed, errors=(409,),
              before=_settlement_before),
), "Sites, tariffs, pricing and settlements")
