"""OCPI 2.2.1 Sessions module, SENDER (mod_sessions.asciidoc): the sessions started with a
partner's token, as the partner's Session objects.

- Objects: the Session is made from what the sessions service says of the session (start, energy
  so far, end: `session.progress`, `session.finalized`) and what billing priced (the cost so far
  of a going session, the price of a finalized one: `session.cost-so-far`, `session.priced`, with
  the charging periods and totals as the settlement carries them). Nothing is priced here.
- Push ("Push model"): PUT to the partner's Sessions endpoint when the session is first known,
  then PATCH with the fields that changed and `last_updated`, at most every
  CPMS_OCPI_SESSION_PATCH_SECONDS while it goes, and at once when it is COMPLETED (and after,
  should its price still change), through the push outbox in the transaction of the change.
- Sender interface: `GET /ocpi/2.2.1/sessions`, the requesting partner's Sessions by
  `last_updated` (paginated)."""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from aiohttp import web

from services.ocpi import store
from services.ocpi.locations import evse_uid
from services.ocpi.modules import ANSWERS, OcpiModule
from services.ocpi.pagination import PageQuery, page_of, page_response
from services.ocpi.push import wake_push
from services.ocpi.transport import BASE, PARTNER, invalid
from shared.app import POOL, SETTINGS
from shared.consumer import Message
from shared.jsonutil import format_ts
from shared.openapi import Operation
from shared.periodic import quarter_of
from shared.domain import SessionCostSoFar, SessionFinalized, SessionPriced, SessionProgress

log = logging.getLogger(__name__)

IDENTIFIER = "sessions"
# What a connector is when its operator never said (CdrLocation requires it): the common AC socket.
UNSAID_CONNECTOR = {"standard": "IEC_62196_T2", "format": "SOCKET", "powerType": "AC_3_PHASE"}
CONNECTOR_ID = "1"  # an EVSE's one Connector (services/ocpi/locations.py)


# --- objects -------------------------------------------------------------------------------------

def number(value: Decimal | str | int | float) -> float | int:
    """An OCPI number from a decimal (JSON has no decimals): an int when whole."""
    value = Decimal(str(value))
    return int(value) if value == value.to_integral_value() else float(value)


def price(money: dict) -> dict:
    """An OCPI Price (types.asciidoc): excl_vat, and incl_vat."""
    return {"excl_vat": number(money["excl_vat"]), "incl_vat": number(money["incl_vat"])}


def cdr_token(token: dict) -> dict:
    """The CdrToken of a partner's token (mod_cdrs.asciidoc, CdrToken class)."""
    return {"country_code": token["countryCode"], "party_id": token["partyId"], "uid": token["uid"], "type": token["type"],
            "contract_id": token["contractId"]}


def charging_periods(figures: dict) -> list[dict]:
    return [{"start_date_time": p["start_date_time"],
             "dimensions": [{"type": d["type"], "volume": number(d["volume"])} for d in p["dimensions"]],
             "tariff_id": p["tariff_id"]} for p in figures["charging_periods"]]


def place(row: Any, described: dict | None, *, country_code: str, party_id: str) -> dict | None:
    """Where the session is, once known (its site from billing, its charger and connector): the
    Session's location_id, evse_uid and connector_id as the Locations module names them (the
    site's Location, the connector's EVSE and its one Connector "1"), and the CdrLocation of its
    CDR, as the session first found them (mod_cdrs: "as they were at the start of the charging
    session"). What the connector is: as its progress said, else as the Locations copy has it."""
    site, connector_id = row["site"], row["connector_id"]
    if site is None or row["charge_point_id"] is None or connector_id is None:
        return None
    spec = {**UNSAID_CONNECTOR, **{k: v for k, v in (described or {}).items() if v is not None},
            **{k: v for k, v in (row["connector"] or {}).items() if v is not None}}
    uid = evse_uid(row["charge_point_id"], connector_id)
    cdr_location = {k: v for k, v in site.items() if v is not None}
    cdr_location.update(evse_uid=uid, evse_id=f"{country_code}*{party_id}*E{uid}", connector_id=CONNECTOR_ID,
                        connector_standard=spec["standard"], connector_format=spec["format"],
                        connector_power_type=spec["powerType"])
    return {"location_id": site["id"], "evse_uid": uid, "connector_id": CONNECTOR_ID, "cdr_location": cdr_location}


def session_object(row: asyncpg.Record, *, country_code: str, party_id: str) -> dict[str, Any] | None:
    """The Session as it stands (without `last_updated`), or None while it cannot be stated: its
    start, its place and its currency (billing's first price of it) are needed."""
    location = row["location"]
    if row["started_at"] is None or row["currency"] is None or location is None:
        return None
    completed = row["revision"] > 0
    session: dict[str, Any] = {
        "country_code": country_code, "party_id": party_id, "id": str(row["session_id"]),
        "start_date_time": format_ts(row["started_at"]),
        "kwh": number(round(row["energy_wh"] / 1000, 6)),
        "cdr_token": cdr_token(row["token"]),
        "auth_method": stated_auth_method(row),
        "location_id": location["location_id"], "evse_uid": location["evse_uid"], "connector_id": location["connector_id"],
        "currency": row["currency"],
        "status": "COMPLETED" if completed else "ACTIVE",
    }
    if row["authorization_reference"] is not None:
        session["authorization_reference"] = row["authorization_reference"]
    figures = row["figures"]
    if completed:
        final = figures if row["priced_revision"] > 0 else None
        end = final["end_date_time"] if final else format_ts(row["ended_at"] or row["started_at"])
        session["end_date_time"] = end
    if figures:
        session["charging_periods"] = charging_periods(figures)
        session["total_cost"] = price(figures["total_cost"])
    return session


def auth_method(message: SessionProgress | SessionFinalized) -> str | None:
    """OCPI's AuthMethod of a session as the sessions service tells it (mod_sessions.asciidoc,
    AuthMethod enum): AUTH_REQUEST when the partner was asked in real time, WHITELIST when its
    stored token decided; None when not said. COMMAND is ours to tell: `claim_its_command`."""
    if message.realtimeAuthorized is None:
        return None
    return "AUTH_REQUEST" if message.realtimeAuthorized else "WHITELIST"


def stated_auth_method(row: Any) -> str:
    """The AuthMethod a partner's Session and its CDRs state: one column, so they never differ."""
    return row["auth_method"] or "WHITELIST"


async def claim_its_command(conn: asyncpg.Connection, session_id: UUID) -> bool:
    """Whether the session is the one a partner's START_SESSION or RESERVE_NOW started ("COMMAND:
    Command like StartSession or ReserveNow used to start the Session, the Token provided in the
    Command was used as authorization"): decided once its charger is known and before its Session
    first goes out; the command, once matched, is this session's alone."""
    session = await store.sessions.awaiting_its_start(conn, session_id)
    if session is None:
        return False
    command = await store.commands.claim_start(
        conn, session_id, partner_id=session["partner_id"], token_uid=session["uid"], charge_point_id=session["charge_point_id"],
        connector_id=session["connector_id"], started_at=session["started_at"], heard_at=session["heard_at"])
    if command is None:
        return False
    await store.sessions.set_started_by_command(conn, session_id, command["authorization_reference"])
    return True


def digest(figures: dict) -> str:
    return hashlib.sha256(orjson.dumps(figures, option=orjson.OPT_SORT_KEYS)).hexdigest()


# --- from the sessions and billing services ------------------------------------------------------

_KINDS: dict[str, type] = {m.routing_key: m for m in (SessionProgress, SessionFinalized, SessionCostSoFar, SessionPriced)}


async def apply_session_messages(conn: asyncpg.Connection, messages: list[Message]) -> list[UUID]:
    """The messages of partners' sessions into their copies (any other session is not ours to
    tell); returns the sessions that changed."""
    changed: set[UUID] = set()
    for message in messages:
        kind = _KINDS.get(message.routing_key)
        if kind is None:
            log.warning("unexpected message ignored", extra={"routing_key": message.routing_key})
            continue
        m = kind.model_validate(message.body)
        token = getattr(m, "partnerToken", None)
        if token is None:
            continue
        token = token.model_dump(mode="json")
        if isinstance(m, SessionProgress):
            applied = await store.sessions.apply_progress(
                conn, m.sessionId, token, charge_point_id=m.chargePointId, transaction_id=m.transactionId, auth_method=auth_method(m),
                connector_id=m.connectorId, started_at=m.startedAt, energy_wh=m.energyWh, sequence=m.sequence, connector=m.connector)
        elif isinstance(m, SessionFinalized):
            applied = await store.sessions.apply_finalized(
                conn, m.sessionId, token, charge_point_id=m.chargePointId, transaction_id=m.transactionId, auth_method=auth_method(m),
                connector_id=m.connectorId, started_at=m.startedAt, ended_at=m.endedAt, energy_wh=m.energyWh, revision=m.revision)
        elif isinstance(m, SessionCostSoFar):
            applied = await store.sessions.apply_cost_so_far(
                conn, m.sessionId, token, sequence=m.sequence, currency=m.currency, tariff_id=m.tariffId, figures=m.figures,
                site=m.location)
        else:
            if m.figures is None:
                continue  # from a sender before CDR figures: nothing a CDR could state
            applied = await store.sessions.apply_priced(
                conn, m.sessionId, token, revision=m.revision, currency=m.costCurrency, tariff_id=m.tariffId, figures=m.figures,
                digest=digest(m.figures), site=m.location)
        if isinstance(m, SessionProgress | SessionFinalized) and await claim_its_command(conn, m.sessionId):
            applied = True
        if applied:
            changed.add(m.sessionId)
    return sorted(changed)


# --- push ------------------------------------------------------------------------------------------

async def refresh(conn: asyncpg.Connection, session_ids: Sequence[UUID], settings: Any, *, now: datetime | None = None) -> None:
    """Restate the sessions (locked here) and send each partner what changed, when it is due:
    a PUT for a Session the partner never had, a PATCH otherwise (only the changed fields and
    `last_updated`), at most every CPMS_OCPI_SESSION_PATCH_SECONDS while the session goes."""
    now = now or datetime.now(UTC)
    for row in await store.sessions.lock(conn, session_ids):
        if row["location"] is None:
            described = None
            if row["connector"] is None and row["charge_point_id"] is not None and row["connector_id"] is not None:
                evse = await store.locations.evse(conn, row["charge_point_id"], row["connector_id"])
                if evse is not None:
                    described = {"standard": evse["standard"], "format": evse["format"], "powerType": evse["power_type"]}
            found = place(row, described, country_code=settings.ocpi_country_code, party_id=settings.ocpi_party_id)
            if found is not None:
                await store.sessions.set_location(conn, row["session_id"], found)
                row = {**row, "location": found}
        stated = session_object(row, country_code=settings.ocpi_country_code, party_id=settings.ocpi_party_id)
        if stated is None:
            continue
        held = row["session"]
        if held is None or {k: v for k, v in held.items() if k != "last_updated"} != stated:
            held = {**stated, "last_updated": format_ts(now)}
            await store.sessions.set_session(conn, row["session_id"], held, now)
        await _send_when_due(conn, row, held, settings, now)


async def _send_when_due(conn: asyncpg.Connection, row: Any, session: dict, settings: Any, now: datetime) -> None:
    sent = row["sent"]
    if sent == session:
        return
    path = f"/{settings.ocpi_country_code}/{settings.ocpi_party_id}/{row['session_id']}"
    if sent is None:
        method, body = "PUT", session
    else:
        going = session["status"] != "COMPLETED" and sent.get("status") != "COMPLETED"
        if going and row["sent_at"] is not None and row["sent_at"] > now - timedelta(seconds=settings.ocpi_session_patch_seconds):
            return  # the sweep sends it when its time comes
        method = "PATCH"
        body = {k: v for k, v in session.items() if sent.get(k) != v}
        body["last_updated"] = session["last_updated"]
    await store.push.enqueue(conn, [row["partner_id"]], module=IDENTIFIER, object_key=f"sessions/{row['session_id']}", method=method,
                             path=path, body=body)
    await store.sessions.mark_sent(conn, row["session_id"], session)


async def send_due_patches(pool: asyncpg.Pool, settings: Any, *, batch: int = 200) -> int:
    """The sweep: Sessions whose changes waited for their PATCH interval, sent now."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        waiting = await store.sessions.unsent(conn, sent_before=now - timedelta(seconds=settings.ocpi_session_patch_seconds),
                                              limit=batch)
        if waiting:
            await refresh(conn, waiting, settings, now=now)
    return len(waiting)


async def apply_and_push(conn: asyncpg.Connection, messages: list[Message], settings: Any) -> None:
    """The consumer: apply the messages, then restate and push the sessions they changed, in the
    same transaction."""
    changed = await apply_session_messages(conn, messages)
    if changed:
        await refresh(conn, changed, settings)


def patch_sweep_seconds(app: web.Application) -> float:
    return quarter_of(app[SETTINGS].ocpi_session_patch_seconds, at_most=5.0)


async def sweep_patches(app: web.Application) -> None:
    if await send_due_patches(app[POOL], app[SETTINGS]):
        wake_push(app)


# --- Sender interface ------------------------------------------------------------------------------

async def get_sessions(request: web.Request) -> web.Response:
    """The calling partner's Sessions last updated in [date_from, date_to) ("GET Method": date_from
    is required), oldest first, paginated."""
    page = page_of(request)
    if page.date_from is None:
        raise invalid("date_from is required (mod_sessions.asciidoc, GET Method, Request Parameters)")
    async with request.app[POOL].acquire() as conn:
        rows, total = await store.sessions.page(conn, request[PARTNER].partner_id, date_from=page.date_from,
                                                date_to=page.date_to, offset=page.offset, limit=page.limit)
    return page_response(request, page, [r["session"] for r in rows], total)


MODULE = OcpiModule(IDENTIFIER, ("SENDER",), (
    Operation("GET", f"{BASE}/{IDENTIFIER}", get_sessions, "OCPI: the caller's Sessions (paginated)", "ocpi", ANSWERS,
              query=PageQuery),
))
