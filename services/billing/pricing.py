"""Pricing a finalized session: the tariff in force at its start for the charger's site, the
exact cost, and the one settlement that follows the price while nothing has been paid."""
from __future__ import annotations

import logging
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg

from services.billing import cdr_figures, metrics, settlements, store, tariff_engine
from services.billing.ocpi import OcpiTariff
from services.billing.money import session_cost
from services.billing.tariff_engine import Line, Priced, Segment
from shared.domain import SessionCostSoFar, SessionFinalized, SessionPriced, SessionProgress, SettlementStatus
from shared.events import start_instant
from shared.outbox import enqueue_domain_many

log = logging.getLogger(__name__)

Measured = SessionFinalized | SessionProgress  # a session's energy and periods, ended or so far

NOT_PRICED = {
    "missing_energy": "its energy is Missing",
    "no_start": "its start was never reported",
    "no_site": "its charger belongs to no site",
    "no_tariff": "its site had no tariff in force when it started",
}


async def price_sessions(conn: asyncpg.Connection, finalized: list[SessionFinalized]) -> None:
    """Apply a batch of finalization revisions with a few set-based statements. Per session only
    its highest revision counts, and one not newer than what was applied changes nothing, so any
    order of deliveries converges on the highest revision."""
    latest: dict[UUID, SessionFinalized] = {}
    for session in finalized:
        held = latest.get(session.sessionId)
        if held is None or session.revision > held.revision:
            latest[session.sessionId] = session
    applied = await store.lock_session_prices(conn, [(s.sessionId, s.chargePointId) for s in latest.values()])
    sessions = [s for s in latest.values() if applied[s.sessionId] is None or s.revision > applied[s.sessionId]]
    if not sessions:
        return
    existing = await store.lock_settlements_of_sessions(conn, [s.sessionId for s in sessions])
    # Money has moved (or was refused): the amount stays what it was.
    refused = [s for s in sessions if s.sessionId in existing and existing[s.sessionId]["status"] != SettlementStatus.PENDING]
    open_ = [s for s in sessions if s.sessionId not in existing or existing[s.sessionId]["status"] == SettlementStatus.PENDING]
    sites = await store.sites_of_chargers(conn, sorted({s.chargePointId for s in open_}))
    tariffs = await _tariffs_at_start(conn, open_, sites)

    revisions: list[store.Revision] = []
    prices: list[store.Price] = []
    for session in open_:
        site = sites.get(session.chargePointId)
        tariff, ocpi = tariffs.get(session.sessionId, (None, None))
        reason = _not_priced_reason(session, site, tariff)
        if reason is not None:
            revisions.append(store.Revision(session.sessionId, session.revision, session.energyWh, reason))
            continue
        if session.energyWh < 0:
            raise ValueError(f"session {session.sessionId} has a negative energy {session.energyWh}")
        zone = ZoneInfo(site["time_zone"])
        cost, priced = priced_session(ocpi, session, zone)
        prices.append(store.Price(session.sessionId, session.chargePointId, session.revision, session.energyWh, site, tariff,
                                  cost, breakdown(priced), figures_of(tariff, ocpi, session, priced, zone)))

    await store.record_revisions(
        conn, [store.Revision(s.sessionId, s.revision, s.energyWh, "settlement_not_pending") for s in refused], price_stays=True)
    await store.record_revisions(conn, revisions)
    for revision in revisions:
        settlement = existing.get(revision.session_id)
        if settlement is not None and settlement["status"] == SettlementStatus.PENDING:
            await settlements.move(conn, settlement["settlement_id"], settlements.Request(
                SettlementStatus.FAILED, error=f"the session was re-finalized (revision {revision.revision}) and can no longer be priced: "
                                f"{NOT_PRICED[revision.not_priced_reason]}"))
    priced_at = await store.record_prices(conn, prices)
    await enqueue_domain_many(conn, store.SCHEMA, [
        SessionPriced(sessionId=p.session_id, tariffId=p.tariff["tariff_id"], costAmount=p.cost, costCurrency=p.tariff["currency"],
                      pricedAt=priced_at[p.session_id], revision=p.revision, energyWh=p.energy_wh, costBreakdown=p.breakdown,
                      siteId=p.site["site_id"], figures=p.figures, location=cdr_figures.place(p.site),
                      partnerToken=latest[p.session_id].partnerToken)
        for p in prices
    ])
    await settlements.create(conn, [p for p in prices if p.session_id not in existing])
    await store.reprice_settlements(conn, [p for p in prices if p.session_id in existing])
    metrics.REPRICING_REFUSED.inc(len(refused))
    for revision in revisions:
        metrics.SESSIONS_NOT_PRICED.labels(revision.not_priced_reason).inc()
    metrics.SESSIONS_PRICED.inc(len(prices))


async def price_so_far(conn: asyncpg.Connection, progress: list[SessionProgress], *, default_currency: str) -> None:
    """The cost so far of going sessions, by the tariff in force at each one's start, as a
    finalized session is priced: announced (`session.cost-so-far`), never stored or settled. Per
    session only the newest progress of the batch counts."""
    latest: dict[UUID, SessionProgress] = {}
    for p in progress:
        if p.sessionId not in latest or p.sequence > latest[p.sessionId].sequence:
            latest[p.sessionId] = p
    going = list(latest.values())
    sites = await store.sites_of_chargers(conn, sorted({p.chargePointId for p in going}))
    tariffs = await _tariffs_at_start(conn, going, sites)
    now = datetime.now(UTC)
    announced = []
    for p in going:
        tariff, ocpi = tariffs.get(p.sessionId, (None, None))
        site = sites.get(p.chargePointId)
        if tariff is None:
            announced.append(SessionCostSoFar(
                sessionId=p.sessionId, sequence=p.sequence, currency=default_currency, pricedAt=now,
                siteId=site["site_id"] if site else None, location=cdr_figures.place(site) if site else None,
                partnerToken=p.partnerToken))
            continue
        zone = ZoneInfo(site["time_zone"])
        cost, priced = priced_session(ocpi, p, zone)
        announced.append(SessionCostSoFar(
            sessionId=p.sessionId, sequence=p.sequence, currency=tariff["currency"], tariffId=tariff["tariff_id"], costAmount=cost,
            siteId=site["site_id"], figures=figures_of(tariff, ocpi, p, priced, zone), location=cdr_figures.place(site), pricedAt=now,
            partnerToken=p.partnerToken))
    await enqueue_domain_many(conn, store.SCHEMA, announced)
    metrics.SESSIONS_PRICED_SO_FAR.inc(len(announced))


async def _tariffs_at_start(
    conn: asyncpg.Connection, sessions: list[Measured], sites: dict[str, asyncpg.Record],
) -> dict[UUID, tuple[asyncpg.Record, OcpiTariff]]:
    """The tariff of each session's site in force at the session's start, where there is one: the
    site's tariff then, if the OCPI tariff's own validity (start/end_date_time) holds then too."""
    wanted = [s for s in sessions if s.startedAt is not None and s.chargePointId in sites]
    found = await store.tariffs_in_force(conn, [(sites[s.chargePointId]["site_id"], start_instant(s.startedAt)) for s in wanted])
    parsed: dict[UUID, OcpiTariff] = {}
    result = {}
    for session, row in zip(wanted, found, strict=True):
        if row is None:
            continue
        tariff = parsed.setdefault(row["tariff_id"], OcpiTariff.model_validate(row["ocpi"]))
        if tariff.in_force(start_instant(session.startedAt)):
            result[session.sessionId] = (row, tariff)
    return result


def cost_of(tariff: OcpiTariff, session: Measured, zone: tzinfo = UTC) -> tuple[Decimal, list[dict]]:
    """The session's cost (incl. VAT, rounded) and its breakdown, at a site whose wall clock is `zone`."""
    cost, priced = priced_session(tariff, session, zone)
    return cost, breakdown(priced)


def priced_session(tariff: OcpiTariff, session: Measured, zone: tzinfo = UTC) -> tuple[Decimal, Priced]:
    """The session's cost (incl. VAT, rounded) and what each component billed. A tariff that is
    only a price per kWh needs no periods: energy x price, as CONTRACT section 4 has always priced
    it (the engine gives the same, a property test holds it to that)."""
    per_kwh = tariff.only_price_per_kwh()
    if per_kwh is not None:
        cost = session_cost(session.energyWh, per_kwh, tariff.currency)
        energy = session.energyWh / 1000
        return cost, Priced(tariff.currency, [Line("ENERGY", energy, "kWh", energy * per_kwh, None, energy * per_kwh)])
    priced = tariff_engine.price(tariff, session_segments(session), zone)
    return priced.cost_amount, priced


def figures_of(tariff: asyncpg.Record, ocpi: OcpiTariff, session: Measured, priced: Priced, zone: tzinfo = UTC) -> dict:
    """What a CDR states of the session's price (services/billing/cdr_figures.py)."""
    return cdr_figures.session_figures(tariff, ocpi, session_segments(session), priced, zone)


def session_segments(session: Measured) -> list[Segment]:
    """The session as the engine prices it: its charging periods, as the sessions service found
    them; from an older sender, one charging period from its start to its end."""
    if session.periods:
        return [Segment(datetime.fromisoformat(p["start"]), datetime.fromisoformat(p["end"]), Decimal(p["energyWh"]),
                        bool(p["charging"])) for p in session.periods]
    ended = session.endedAt if isinstance(session, SessionFinalized) else session.at
    end = max(ended or session.startedAt, session.startedAt)
    return [Segment(session.startedAt, end, session.energyWh)]


def breakdown(priced: Priced) -> list[dict]:
    """costBreakdown on the wire: one entry per price component that billed, decimal strings."""
    return [{"type": line.type, "volume": _text(line.volume), "unit": line.unit,
             "amountExclVat": _text(line.amount_excl_vat), "vatPercent": _text(line.vat_percent) if line.vat_percent is not None else None,
             "amountInclVat": _text(line.amount_incl_vat)} for line in priced.lines]


def _text(value: Decimal) -> str:
    """A decimal without trailing zeros or exponent (at most 12 places: a display figure)."""
    return format(value.quantize(Decimal("1e-12")).normalize(), "f")


def _not_priced_reason(session: SessionFinalized, site: asyncpg.Record | None, tariff: asyncpg.Record | None) -> str | None:
    if session.energyWh is None or session.energySource == "Missing":
        return "missing_energy"
    if session.startedAt is None:
        return "no_start"
    if site is None:
        return "no_site"
    if tariff is None:
        return "no_tariff"
    return None
