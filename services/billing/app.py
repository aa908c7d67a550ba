"""Billing: sites, their tariffs and payout wallets, which charger belongs to which site, the
price of every finalized session and its settlement. Every route is listed in `setup`."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from uuid import UUID

import pydantic
from aiohttp import web

from services.billing import consumers, metrics, settlements, store
from services.billing.models import (
    AssignSite, CreateSite, CreateTariff, ListQuery, MarkFailed, MarkSubmitted, SetWallet, SettlementQuery,
    parse_decimal_body,
)
from services.billing.money import to_minor_units
from shared.app import POOL, SETTINGS, add_applied_notices, add_consumer, add_outbox_relay, copies_applied
from shared.events import ChargePointId
from shared.http import Problem, json_response, parse_body, parse_query
from shared.pagination import decode_cursor, page
from shared.topology import BILLING_CHARGERS, BILLING_SESSIONS, SESSIONS_BILLING, SESSIONS_REGISTRY

log = logging.getLogger(__name__)

SCHEMA = store.SCHEMA
GAUGE_REFRESH_SECONDS = 5.0
_charge_point_id = pydantic.TypeAdapter(ChargePointId)


def _path_uuid(request: web.Request, name: str, what: str) -> UUID:
    try:
        return UUID(request.match_info[name])
    except ValueError:
        raise Problem(404, f"{what} not found", f"no {what.lower()} {request.match_info[name]!r}") from None


def _cursor(query) -> tuple | None:
    return decode_cursor(query.cursor) if query.cursor else None


async def _site_or_404(conn, request: web.Request):
    site_id = _path_uuid(request, "siteId", "Site")
    site = await store.get_site(conn, site_id)
    if site is None:
        raise Problem(404, "Site not found", f"no site {site_id}")
    return site


# Sites, tariffs, wallets

async def create_site(request: web.Request) -> web.Response:
    body = await parse_body(request, CreateSite)
    async with request.app[POOL].acquire() as conn:
        row = await store.create_site(conn, body.name)
    return json_response(store.render_site(row), status=201)


async def list_sites(request: web.Request) -> web.Response:
    query = parse_query(request, ListQuery)
    async with request.app[POOL].acquire() as conn:
        rows = await store.list_sites(conn, limit=query.limit, cursor=_cursor(query))
    return json_response(page(rows, query.limit, store.render_site, lambda r: (r["created_at"], r["site_id"])))


async def get_site(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        return json_response(store.render_site(await _site_or_404(conn, request)))


async def set_wallet(request: web.Request) -> web.Response:
    site_id = _path_uuid(request, "siteId", "Site")
    body = await parse_body(request, SetWallet)
    async with request.app[POOL].acquire() as conn:
        row = await store.set_wallet(conn, site_id, body.wallet)
    if row is None:
        raise Problem(404, "Site not found", f"no site {site_id}")
    return json_response(store.render_site(row))


async def create_tariff(request: web.Request) -> web.Response:
    site_id = _path_uuid(request, "siteId", "Site")
    settings = request.app[SETTINGS]
    body = await parse_decimal_body(request, CreateTariff, context={"max_price_per_kwh": settings.max_price_per_kwh})
    async with request.app[POOL].acquire() as conn:
        row = await store.create_tariff(conn, site_id, body.pricePerKwh, body.currency or settings.default_currency)
    if row is None:
        raise Problem(404, "Site not found", f"no site {site_id}")
    return json_response(store.render_tariff(row), status=201)


async def list_tariffs(request: web.Request) -> web.Response:
    query = parse_query(request, ListQuery)
    async with request.app[POOL].acquire() as conn:
        site = await _site_or_404(conn, request)
        rows = await store.list_tariffs(conn, site["site_id"], limit=query.limit, cursor=_cursor(query))
    return json_response(page(rows, query.limit, store.render_tariff, lambda r: (r["active_from"], r["tariff_id"])))


async def assign_site(request: web.Request) -> web.Response:
    """Billing may not have heard of the charger yet: any well-formed id is accepted."""
    try:
        charge_point_id = _charge_point_id.validate_python(request.match_info["chargePointId"])
    except pydantic.ValidationError:
        raise Problem(400, "Invalid request", "the charge point id is not valid",
                      errors=[{"loc": ["path", "chargePointId"], "msg": "1 to 64 letters, digits or ._:*@+-"}]) from None
    body = await parse_body(request, AssignSite)
    async with request.app[POOL].acquire() as conn:
        written = await store.assign_site(conn, charge_point_id, body.siteId)
    if written is None:
        raise Problem(404, "Site not found", f"no site {body.siteId}")
    row, announced = written
    await copies_applied(request.app, SCHEMA, [announced], keeper=SESSIONS_REGISTRY)  # GET /v1/chargers/{id} shows it
    return json_response(store.render_assignment(row))


# Settlements

async def list_settlements(request: web.Request) -> web.Response:
    query = parse_query(request, SettlementQuery)
    filters = {"status": query.status, "site_id": query.siteId, "session_id": query.sessionId, "charge_point_id": query.chargePointId}
    async with request.app[POOL].acquire() as conn:
        rows = await store.list_settlements(conn, limit=query.limit, cursor=_cursor(query), filters=filters)
    return json_response(page(rows, query.limit, store.render_settlement, lambda r: (r["created_at"], r["settlement_id"])))


async def get_settlement(request: web.Request) -> web.Response:
    settlement_id = _path_uuid(request, "settlementId", "Settlement")
    async with request.app[POOL].acquire() as conn:
        row = await store.get_settlement(conn, settlement_id)
    if row is None:
        raise Problem(404, "Settlement not found", f"no settlement {settlement_id}")
    return json_response(store.render_settlement(row))


async def _transition(request: web.Request, wanted: settlements.Request) -> web.Response:
    """Lock the settlement, check the graph, move it and announce it, in one transaction; answer
    once the session's copy of the status is applied."""
    settlement_id = _path_uuid(request, "settlementId", "Settlement")
    async with request.app[POOL].acquire() as conn, conn.transaction():
        current = await store.lock_settlement(conn, settlement_id)
        if current is None:
            raise Problem(404, "Settlement not found", f"no settlement {settlement_id}")
        try:
            noop = settlements.is_noop(current, wanted)
        except Problem:
            metrics.TRANSITIONS.labels(wanted.status, "conflict").inc()
            raise
        row, announced = (current, None) if noop else await store.change_status(
            conn, settlement_id, wanted.status,
            chain=wanted.chain, tx_hash=wanted.tx_hash, external_ref=wanted.external_ref, error=wanted.error,
        )
    metrics.TRANSITIONS.labels(wanted.status, "noop" if noop else "applied").inc()
    if announced is not None:
        # The session obeys "money has moved" once this answers (a force finalize is 409 from then on).
        await copies_applied(request.app, SCHEMA, [announced], keeper=SESSIONS_BILLING)
        if wanted.status == "Confirmed":
            metrics.AMOUNT_SETTLED.labels(row["currency"]).inc(to_minor_units(row["amount"], row["currency"]))
    return json_response(store.render_settlement(row))


async def mark_submitted(request: web.Request) -> web.Response:
    body = await parse_decimal_body(request, MarkSubmitted)
    return await _transition(request, settlements.Request(
        "Submitted", chain=body.chain, tx_hash=body.txHash, external_ref=body.externalRef,
        amount=body.amount, currency=body.currency,
    ))


async def mark_confirmed(request: web.Request) -> web.Response:
    return await _transition(request, settlements.Request("Confirmed"))


async def mark_failed(request: web.Request) -> web.Response:
    body = await parse_body(request, MarkFailed)
    return await _transition(request, settlements.Request("Failed", error=body.error))


async def settlement_gauge(app: web.Application) -> AsyncIterator[None]:
    """Settlements by status, read from the database: right whichever process changed them."""

    async def refresh() -> None:
        while True:
            try:
                async with app[POOL].acquire() as conn:
                    counts = await store.settlement_counts(conn)
                for status in ("Pending", "Submitted", "Confirmed", "Failed"):
                    metrics.SETTLEMENTS.labels(status).set(counts.get(status, 0))
            except Exception:
                log.debug("could not count settlements", exc_info=True)
            await asyncio.sleep(GAUGE_REFRESH_SECONDS)

    task = asyncio.create_task(refresh(), name="billing:settlement-gauge")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def setup(app: web.Application) -> None:
    app.router.add_post("/v1/sites", create_site)
    app.router.add_get("/v1/sites", list_sites)
    app.router.add_get("/v1/sites/{siteId}", get_site)
    app.router.add_post("/v1/sites/{siteId}/tariffs", create_tariff)
    app.router.add_get("/v1/sites/{siteId}/tariffs", list_tariffs)
    app.router.add_post("/v1/sites/{siteId}/wallet", set_wallet)
    app.router.add_put("/v1/chargers/{chargePointId}/site", assign_site)
    app.router.add_get("/v1/settlements", list_settlements)
    app.router.add_get("/v1/settlements/{settlementId}", get_settlement)
    app.router.add_post("/v1/settlements/{settlementId}/submitted", mark_submitted)
    app.router.add_post("/v1/settlements/{settlementId}/confirmed", mark_confirmed)
    app.router.add_post("/v1/settlements/{settlementId}/failed", mark_failed)
    add_outbox_relay(app, SCHEMA)
    add_applied_notices(app)
    add_consumer(app, BILLING_SESSIONS, SCHEMA, batch_handler=consumers.price_finalized_sessions, wakes_outbox=True)
    add_consumer(app, BILLING_CHARGERS, SCHEMA, consumers.assign_registered_charger, wakes_outbox=True)
    app.cleanup_ctx.append(settlement_gauge)
