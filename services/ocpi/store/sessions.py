"""SQL of the partners' sessions (Sessions module, SENDER): the copy of what the sessions and
billing services said of each session started with a partner's token, the OCPI Session it makes,
and what the partner was last sent. Each kind of message keeps its newest (by sequence or
revision), so any order of delivery converges."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

# Whose session it is: the partner that pushed the token (Tokens module), else the registered
# partner holding the token's party (country_code, party_id) among its roles.
_PARTNER_OF_TOKEN = """coalesce(
    (SELECT partner_id FROM ocpi.tokens WHERE country_code = upper($2::jsonb->>'countryCode')
        AND party_id = upper($2::jsonb->>'partyId') AND uid_key = lower($2::jsonb->>'uid') AND type = $2::jsonb->>'type'),
    (SELECT partner_id FROM ocpi.partners WHERE status = 'REGISTERED'
        AND roles @> jsonb_build_array(jsonb_build_object('country_code', $2::jsonb->>'countryCode', 'party_id', $2::jsonb->>'partyId'))
        ORDER BY registered_at DESC LIMIT 1))"""


async def _ensure(conn: asyncpg.Connection, session_id: UUID, token: dict[str, Any], charge_point_id: str | None,
                  transaction_id: int | None = None, auth_method: str | None = None) -> None:
    """The session's row, made the first time any message of it comes (locked by the caller's update);
    its charger, OCPP transaction id and AuthMethod as the first message naming them said."""
    await conn.execute(
        f"""
        INSERT INTO ocpi.roaming_sessions (session_id, partner_id, token, charge_point_id, transaction_id, auth_method, last_updated)
        VALUES ($1, {_PARTNER_OF_TOKEN}, $2, $3, $4, $5, now())
        ON CONFLICT (session_id) DO UPDATE SET charge_point_id = coalesce(roaming_sessions.charge_point_id, EXCLUDED.charge_point_id),
            transaction_id = coalesce(roaming_sessions.transaction_id, EXCLUDED.transaction_id),
            auth_method = coalesce(roaming_sessions.auth_method, EXCLUDED.auth_method)
        """,
        session_id, token, charge_point_id, transaction_id, auth_method,
    )


async def apply_progress(conn: asyncpg.Connection, session_id: UUID, token: dict[str, Any], *, charge_point_id: str,
                         transaction_id: int, auth_method: str | None, connector_id: int | None, started_at: datetime, energy_wh: Decimal, sequence: int,
                         connector: dict | None) -> bool:
    """A going session's progress, unless a newer one or its finalization came first; the first
    word of what its connector is stays (a CDR states it as it was at the start)."""
    await _ensure(conn, session_id, token, charge_point_id, transaction_id, auth_method)
    result = await conn.execute(
        """
        UPDATE ocpi.roaming_sessions SET connector_id = $2, started_at = $3, energy_wh = $4, progress_sequence = $5,
            connector = coalesce(connector, $6)
        WHERE session_id = $1 AND revision = 0 AND progress_sequence < $5
        """,
        session_id, connector_id, started_at, energy_wh, sequence, connector,
    )
    return result != "UPDATE 0"


async def apply_finalized(conn: asyncpg.Connection, session_id: UUID, token: dict[str, Any], *, charge_point_id: str,
                          transaction_id: int, auth_method: str | None, connector_id: int | None, started_at: datetime | None, ended_at: datetime | None,
                          energy_wh: Decimal | None, revision: int) -> bool:
    await _ensure(conn, session_id, token, charge_point_id, transaction_id, auth_method)
    result = await conn.execute(
        """
        UPDATE ocpi.roaming_sessions SET connector_id = coalesce($2, connector_id), started_at = coalesce($3, started_at),
            ended_at = $4, energy_wh = coalesce($5, energy_wh), revision = $6
        WHERE session_id = $1 AND revision < $6
        """,
        session_id, connector_id, started_at, ended_at, energy_wh, revision,
    )
    return result != "UPDATE 0"


async def apply_cost_so_far(conn: asyncpg.Connection, session_id: UUID, token: dict[str, Any], *, sequence: int, currency: str,
                            tariff_id: UUID | None, figures: dict | None, site: dict | None) -> bool:
    """A going session's cost so far, unless a newer one or its final price came first; the first
    word of its site stays."""
    await _ensure(conn, session_id, token, None)
    result = await conn.execute(
        """
        UPDATE ocpi.roaming_sessions SET cost_sequence = $2, currency = $3, tariff_id = $4, figures = $5, site = coalesce(site, $6)
        WHERE session_id = $1 AND priced_revision = 0 AND cost_sequence < $2
        """,
        session_id, sequence, currency, tariff_id, figures, site,
    )
    return result != "UPDATE 0"


async def apply_priced(conn: asyncpg.Connection, session_id: UUID, token: dict[str, Any], *, revision: int, currency: str,
                       tariff_id: UUID, figures: dict, digest: str, site: dict | None) -> bool:
    """A finalized session's price; when its figures differ from those held, the CDR delay starts again."""
    await _ensure(conn, session_id, token, None)
    result = await conn.execute(
        """
        UPDATE ocpi.roaming_sessions SET priced_revision = $2, currency = $3, tariff_id = $4, figures = $5,
            figures_changed_at = CASE WHEN figures_digest IS DISTINCT FROM $6 THEN now() ELSE figures_changed_at END,
            figures_digest = $6, site = coalesce(site, $7)
        WHERE session_id = $1 AND priced_revision < $2
        """,
        session_id, revision, currency, tariff_id, figures, digest, site,
    )
    return result != "UPDATE 0"


async def awaiting_its_start(conn: asyncpg.Connection, session_id: UUID) -> asyncpg.Record | None:
    """The session, while the partner's command that may have started it can still be found: a
    partner's session at a known charger, never stated yet (how it was authorized is settled
    before its Session first goes out)."""
    return await conn.fetchrow(
        "SELECT partner_id, token->>'uid' AS uid, charge_point_id, connector_id, started_at, heard_at FROM ocpi.roaming_sessions "
        "WHERE session_id = $1 AND session IS NULL AND partner_id IS NOT NULL AND charge_point_id IS NOT NULL "
        "AND auth_method IS DISTINCT FROM 'COMMAND'",
        session_id,
    )


async def set_started_by_command(conn: asyncpg.Connection, session_id: UUID, authorization_reference: str | None) -> None:
    await conn.execute(
        "UPDATE ocpi.roaming_sessions SET auth_method = 'COMMAND', authorization_reference = $2 WHERE session_id = $1",
        session_id, authorization_reference,
    )


async def lock(conn: asyncpg.Connection, session_ids: Sequence[UUID]) -> list[asyncpg.Record]:
    """The sessions of partners among these, locked, in id order."""
    return await conn.fetch(
        "SELECT * FROM ocpi.roaming_sessions WHERE session_id = ANY($1::uuid[]) AND partner_id IS NOT NULL "
        "ORDER BY session_id FOR UPDATE",
        list(session_ids),
    )


async def set_location(conn: asyncpg.Connection, session_id: UUID, location: dict) -> None:
    await conn.execute("UPDATE ocpi.roaming_sessions SET location = $2 WHERE session_id = $1 AND location IS NULL", session_id, location)


async def set_session(conn: asyncpg.Connection, session_id: UUID, session: dict, last_updated: datetime) -> None:
    await conn.execute("UPDATE ocpi.roaming_sessions SET session = $2, last_updated = $3 WHERE session_id = $1",
                       session_id, session, last_updated)


async def mark_sent(conn: asyncpg.Connection, session_id: UUID, sent: dict) -> None:
    await conn.execute("UPDATE ocpi.roaming_sessions SET sent = $2, sent_at = now() WHERE session_id = $1", session_id, sent)


async def unsent(conn: asyncpg.Connection, *, sent_before: datetime, limit: int) -> list[UUID]:
    """Sessions whose partner has not been sent what they stand at, last sent before `sent_before`."""
    rows = await conn.fetch(
        "SELECT session_id FROM ocpi.roaming_sessions WHERE session IS DISTINCT FROM sent AND session IS NOT NULL "
        "AND partner_id IS NOT NULL AND (sent_at IS NULL OR sent_at <= $1) ORDER BY sent_at NULLS FIRST LIMIT $2",
        sent_before, limit,
    )
    return [r["session_id"] for r in rows]


async def page(conn: asyncpg.Connection, partner_id: UUID, *, date_from: datetime | None, date_to: datetime | None,
               offset: int, limit: int) -> tuple[list[asyncpg.Record], int]:
    """A partner's Sessions last updated in [date_from, date_to), oldest first, and how many there are."""
    where = ("partner_id = $1 AND session IS NOT NULL AND ($2::timestamptz IS NULL OR last_updated >= $2) "
             "AND ($3::timestamptz IS NULL OR last_updated < $3)")
    total = await conn.fetchval(f"SELECT count(*) FROM ocpi.roaming_sessions WHERE {where}", partner_id, date_from, date_to)
    rows = await conn.fetch(
        f"SELECT session FROM ocpi.roaming_sessions WHERE {where} ORDER BY last_updated, session_id OFFSET $4 LIMIT $5",
        partner_id, date_from, date_to, offset, limit,
    )
    return rows, total
