"""SQL of the token list: the current tokens, every version of each one by the time it was
written (so a token can be looked up as it stood at any instant: a session's start), and the
sessions an idTag has going."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from shared.db import Filters, substring_pattern
from shared.errors import Conflict

_FIELDS = ("status", "expires_at", "parent_id_tag", "site_ids", "max_concurrent_sessions")


def id_tag_key(id_tag: str) -> str:
    """OCPP idTags are CiString20: case-insensitive. `ABC123` and `abc123` are one token."""
    return id_tag.lower()


class TokenExists(Conflict):
    title = "Token exists"


async def create_token(conn: asyncpg.Connection, id_tag: str, fields: dict[str, Any]) -> asyncpg.Record:
    row = await conn.fetchrow(
        """
        INSERT INTO sessions.tokens (id_tag_key, id_tag, status, expires_at, parent_id_tag, site_ids, max_concurrent_sessions, note)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT (id_tag_key) DO NOTHING
        RETURNING *
        """,
        id_tag_key(id_tag), id_tag, *(fields[f] for f in _FIELDS), fields["note"],
    )
    if row is None:
        raise TokenExists(f"a token {id_tag!r} exists already (idTags are case-insensitive); PUT replaces it")
    await _record_version(conn, row)
    return row


async def replace_token(conn: asyncpg.Connection, id_tag: str, fields: dict[str, Any]) -> asyncpg.Record | None:
    row = await conn.fetchrow(
        """
        UPDATE sessions.tokens SET status = $2, expires_at = $3, parent_id_tag = $4, site_ids = $5,
            max_concurrent_sessions = $6, note = $7, updated_at = now()
        WHERE id_tag_key = $1
        RETURNING *
        """,
        id_tag_key(id_tag), *(fields[f] for f in _FIELDS), fields["note"],
    )
    if row is not None:
        await _record_version(conn, row)
    return row


async def delete_token(conn: asyncpg.Connection, id_tag: str) -> bool:
    key = id_tag_key(id_tag)
    deleted = await conn.fetchval("DELETE FROM sessions.tokens WHERE id_tag_key = $1 RETURNING id_tag_key", key)
    if deleted is not None:
        await conn.execute(
            "INSERT INTO sessions.token_versions (id_tag_key, valid_from, deleted) VALUES ($1, clock_timestamp(), true)", key)
    return deleted is not None


async def _record_version(conn: asyncpg.Connection, row: asyncpg.Record) -> None:
    # clock_timestamp, not now(): a session judged at an instant within this transaction sees the
    # version written before that instant, whichever transaction it is.
    await conn.execute(
        f"INSERT INTO sessions.token_versions (id_tag_key, valid_from, {', '.join(_FIELDS)}) "
        "VALUES ($1, clock_timestamp(), $2, $3, $4, $5, $6)",
        row["id_tag_key"], *(row[f] for f in _FIELDS),
    )


async def token(conn: asyncpg.Connection, id_tag: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM sessions.tokens WHERE id_tag_key = $1", id_tag_key(id_tag))


async def tokens_page(
    conn: asyncpg.Connection, *, status: str | None, search: str | None, after: str | None, limit: int,
) -> list[asyncpg.Record]:
    """A page of the list by idTag (case-insensitively); `search` a substring of the idTag."""
    filters = Filters()
    filters.add_given("status = {}", status)
    filters.add_given("id_tag_key LIKE {}", substring_pattern(search.lower()) if search is not None else None)
    filters.add_given("id_tag_key > {}", after)
    return await conn.fetch(f"SELECT * FROM sessions.tokens WHERE {filters.where} ORDER BY id_tag_key LIMIT {filters.arg(limit + 1)}",
                            *filters.args)


async def versions_at(conn: asyncpg.Connection, wanted: Sequence[tuple[str, datetime]]) -> list[asyncpg.Record | None]:
    """The version of each (idTag, instant) in force at that instant (deleted ones included), None
    where the token had not been written yet; in the order asked."""
    if not wanted:
        return []
    rows = await conn.fetch(
        """
        SELECT w.n, v.version, v.deleted, v.status, v.expires_at, v.parent_id_tag, v.site_ids, v.max_concurrent_sessions
        FROM unnest($1::text[], $2::timestamptz[]) WITH ORDINALITY AS w(id_tag_key, at, n)
        LEFT JOIN LATERAL (
            SELECT * FROM sessions.token_versions t
            WHERE t.id_tag_key = w.id_tag_key AND t.valid_from <= w.at
            ORDER BY t.valid_from DESC, t.version DESC LIMIT 1
        ) v ON true
        ORDER BY w.n
        """,
        [id_tag_key(tag) for tag, _ in wanted], [at for _, at in wanted],
    )
    return [row if row["version"] is not None else None for row in rows]


# When a session stopped, by the charger's clock: its end, or, for one closed without an end (by
# an operator or a rule), its last event.
_STOPPED_AT = "coalesce({s}.ended_at, CASE WHEN {s}.closed_at IS NOT NULL THEN {s}.last_event_at END)"
_BEFORE = "({o}.started_at, {o}.start_order, {o}.session_id) < ({s}.started_at, {s}.start_order, {s}.session_id)"


async def started_sessions(conn: asyncpg.Connection, session_ids: Sequence[Any]) -> list[asyncpg.Record]:
    """The started sessions among `session_ids`, with their charger's site."""
    return await conn.fetch(
        """
        SELECT s.session_id, s.charge_point_id, s.transaction_id, s.id_tag, s.started_at, s.status, s.ended_at,
            s.closed_at, s."authorization", s.stop_requested_at, c.site_id,
            coalesce(s.connector_id, s.connector_hint) AS connector_id, s.partner_token, s.partner_verdict, s.realtime_asked_at
        FROM sessions.sessions s LEFT JOIN sessions.chargers c USING (charge_point_id)
        WHERE s.session_id = ANY($1::uuid[]) AND s.started_at IS NOT NULL
        ORDER BY s.session_id
        """,
        list(session_ids),
    )


async def sessions_to_judge(conn: asyncpg.Connection, session_ids: Sequence[Any]) -> list[asyncpg.Record]:
    """The started sessions among `session_ids`, and the later sessions of the same idTags that
    they overlap (a start or an end that arrives late changes whether those were concurrent),
    each with its charger's site and `concurrent`: how many sessions of its idTag were going at
    its start, by the chargers' clocks."""
    return await conn.fetch(
        f"""
        WITH given AS (
            SELECT * FROM sessions.sessions WHERE session_id = ANY($1::uuid[]) AND started_at IS NOT NULL
        ), judged AS (
            SELECT session_id FROM given
            UNION
            SELECT o.session_id FROM given g JOIN sessions.sessions o
                ON lower(o.id_tag) = lower(g.id_tag) AND o.started_at IS NOT NULL AND {_BEFORE.format(o="g", s="o")}
               AND ({_STOPPED_AT.format(s="g")} IS NULL OR o.started_at < {_STOPPED_AT.format(s="g")})
        )
        SELECT s.session_id, s.charge_point_id, s.transaction_id, s.id_tag, s.started_at, s.status, s.ended_at,
            s.closed_at, s."authorization", s.stop_requested_at, c.site_id,
            coalesce(s.connector_id, s.connector_hint) AS connector_id, s.partner_token, s.partner_verdict, s.realtime_asked_at,
            (SELECT count(*) FROM sessions.sessions o
             WHERE lower(o.id_tag) = lower(s.id_tag) AND o.session_id <> s.session_id AND o.started_at IS NOT NULL
               AND {_BEFORE.format(o="o", s="s")}
               AND ({_STOPPED_AT.format(s="o")} IS NULL OR {_STOPPED_AT.format(s="o")} > s.started_at)) AS concurrent
        FROM sessions.sessions s JOIN judged USING (session_id) LEFT JOIN sessions.chargers c USING (charge_point_id)
        ORDER BY s.session_id
        """,
        list(session_ids),
    )


async def going_sessions(conn: asyncpg.Connection, id_tag: str) -> int:
    """How many sessions of an idTag are going now: started, neither ended nor closed."""
    return await conn.fetchval(
        "SELECT count(*) FROM sessions.sessions WHERE lower(id_tag) = $1 AND started_at IS NOT NULL "
        "AND ended_at IS NULL AND closed_at IS NULL",
        id_tag_key(id_tag),
    )


async def record_authorizations(conn: asyncpg.Connection, decided: Sequence[tuple[Any, str]]) -> None:
    if decided:
        await conn.execute(
            'UPDATE sessions.sessions s SET "authorization" = d.status FROM unnest($1::uuid[], $2::text[]) AS d(id, status) '
            'WHERE s.session_id = d.id AND s."authorization" IS DISTINCT FROM d.status',
            [d[0] for d in decided], [d[1] for d in decided],
        )


async def mark_stop_requested(conn: asyncpg.Connection, session_ids: Sequence[Any]) -> list[Any]:
    """Note that a stop was asked for these sessions; returns those not noted before (once per session)."""
    rows = await conn.fetch(
        "UPDATE sessions.sessions SET stop_requested_at = now() WHERE session_id = ANY($1::uuid[]) AND stop_requested_at IS NULL "
        "RETURNING session_id",
        list(session_ids),
    )
    return [r["session_id"] for r in rows]
