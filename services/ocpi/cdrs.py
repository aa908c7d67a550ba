"""OCPI 2.2.1 CDRs module, SENDER (mod_cdrs.asciidoc): one CDR per finalized, priced session of a
partner's token, POSTed to the partner's CDRs endpoint once the session's figures have not changed
for CPMS_OCPI_CDR_DELAY_SECONDS.

- The CDR states what billing priced and the settlement carries (`session.priced` figures):
  total_cost (incl_vat is the settlement's amount), the energy, time and parking totals and their
  costs, the charging periods with their dimensions and tariff, the tariff as it was at the start;
  its place is the Location, EVSE and Connector as the session found them at its start.
- "A CDR is never changed" ("Credit CDRs"): a session re-priced after its CDR went out gets a
  credit CDR (the original with `-C` appended to its id, `credit: true`, `credit_reference_id`,
  negative total_cost) and then a new CDR with a new id. Ids are derived from the session and how
  many CDRs it had, so a CDR made again after a crash is the same CDR.
- Sender interface: `GET /ocpi/2.2.1/cdrs`, every CDR sent to the requesting partner (paginated)."""
from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiohttp import web

from services.ocpi import store, tariffs
from services.ocpi.modules import ANSWERS, OcpiModule
from services.ocpi.pagination import PageQuery, page_of, page_response
from services.ocpi.push import wake_push
from services.ocpi.sessions import cdr_token, charging_periods, number, price, stated_auth_method
from services.ocpi.transport import BASE, PARTNER
from shared.app import POOL, SETTINGS
from shared.jsonutil import format_ts
from shared.openapi import Operation
from shared.periodic import quarter_of

log = logging.getLogger(__name__)

IDENTIFIER = "cdrs"
_IDS = uuid.UUID("5b0d7c8e-2f0a-4c51-9a43-6f1c0f3f9c2e")  # the namespace of CDR ids


def cdr_id(session_id: uuid.UUID, nth: int) -> str:
    """The id of a session's `nth` CDR (0 first): 36 characters, as OCPI allows a CDR that is no credit."""
    return str(uuid.uuid5(_IDS, f"{session_id}/{nth}"))


def cdr_object(row: Any, tariff: dict | None, *, cdr_id: str, country_code: str, party_id: str, now: datetime) -> dict:
    """The CDR of a finalized, priced session: its figures as billing priced them."""
    f = row["figures"]
    return {
        "country_code": country_code, "party_id": party_id, "id": cdr_id,
        "start_date_time": f["start_date_time"], "end_date_time": f["end_date_time"],
        "session_id": str(row["session_id"]),
        "cdr_token": cdr_token(row["token"]),
        "auth_method": stated_auth_method(row),
        **({"authorization_reference": row["authorization_reference"]} if row["authorization_reference"] is not None else {}),
        "cdr_location": row["location"]["cdr_location"],
        "currency": f["currency"],
        "tariffs": [tariff] if tariff is not None else [],
        "charging_periods": charging_periods(f),
        "total_cost": price(f["total_cost"]),
        "total_fixed_cost": price(f["total_fixed_cost"]),
        "total_energy": number(f["total_energy"]),
        "total_energy_cost": price(f["total_energy_cost"]),
        "total_time": number(f["total_time"]),
        "total_time_cost": price(f["total_time_cost"]),
        "total_parking_time": number(f["total_parking_time"]),
        "total_parking_cost": price(f["total_parking_cost"]),
        "last_updated": format_ts(now),
    }


def credit_of(cdr: dict, *, now: datetime) -> dict:
    """The credit CDR of `cdr`: all its data, its id with `-C` appended, and its total_cost negative
    ("Only the values in the total_cost field SHALL contain the negative amounts")."""
    return {**cdr, "id": f"{cdr['id']}-C", "credit": True, "credit_reference_id": cdr["id"],
            "total_cost": {k: -v for k, v in cdr["total_cost"].items()}, "last_updated": format_ts(now)}


async def _tariff(conn: asyncpg.Connection, settings: Any, row: Any) -> dict | None:
    """The tariff the session was priced by, as the Tariffs module states it (tariffs never change
    but for their end, so this is the tariff as it was at the start)."""
    copy = await store.tariffs.get(conn, row["tariff_id"])
    return tariffs.tariff_object(settings, copy) if copy is not None else None


async def issue_due(pool: asyncpg.Pool, settings: Any, *, batch: int = 100) -> int:
    """Make and POST the CDRs that are due: sessions whose figures have been calm for the delay and
    differ from their current CDR's. Returns how many CDRs were made."""
    now = datetime.now(UTC)
    made = 0
    async with pool.acquire() as conn, conn.transaction():
        for row in await store.cdrs.due(conn, calm_since=now - timedelta(seconds=settings.ocpi_cdr_delay_seconds), limit=batch):
            if row["location"] is None:
                log.warning("a partner's session has no place to state in its CDR", extra={"session_id": str(row["session_id"])})
                continue
            outgoing = []
            standing = await store.cdrs.current(conn, row["session_id"])
            if standing is not None:
                credit = credit_of(standing["body"], now=now)
                outgoing.append(credit)
                await store.cdrs.credited(conn, standing["cdr_id"], credit["id"])
            identity = {"country_code": settings.ocpi_country_code, "party_id": settings.ocpi_party_id}
            outgoing.append(cdr_object(row, await _tariff(conn, settings, row), now=now, **identity,
                                       cdr_id=cdr_id(row["session_id"], await store.cdrs.count_of(conn, row["session_id"]))))
            for cdr in outgoing:
                await store.cdrs.add(conn, cdr, session_id=row["session_id"], partner_id=row["partner_id"], last_updated=now)
                await store.push.enqueue(conn, [row["partner_id"]], module=IDENTIFIER, object_key=f"cdrs/{cdr['id']}", method="POST", path="",
                                         body=cdr)
            await store.cdrs.issued(conn, row["session_id"], row["figures_digest"])
            made += len(outgoing)
    return made


def issue_seconds(app: web.Application) -> float:
    return quarter_of(app[SETTINGS].ocpi_cdr_delay_seconds, at_most=10.0)


async def issue_cdrs(app: web.Application) -> None:
    if await issue_due(app[POOL], app[SETTINGS]):
        wake_push(app)


# --- Sender interface ------------------------------------------------------------------------------

async def get_cdrs(request: web.Request) -> web.Response:
    """Every CDR sent to the calling partner made in [date_from, date_to), in the order they were
    made, paginated."""
    page = page_of(request)
    async with request.app[POOL].acquire() as conn:
        rows, total = await store.cdrs.page(conn, request[PARTNER].partner_id, date_from=page.date_from, date_to=page.date_to,
                                            offset=page.offset, limit=page.limit)
    return page_response(request, page, [r["body"] for r in rows], total)


MODULE = OcpiModule(IDENTIFIER, ("SENDER",), (
    Operation("GET", f"{BASE}/{IDENTIFIER}", get_cdrs, "OCPI: the CDRs sent to the caller (paginated)", "ocpi", ANSWERS,
              query=PageQuery),
))
