"""SQL of the roaming partners' tokens the sessions service keeps a copy of (OCPI 2.2.1 Token,
from the ocpi service), the partners that answer real-time authorization, and what a session
keeps of a partner's token: whose it is and the partner's verdict."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from shared.domain import PartnerTokenChanged, PartnerTokenRef, RealtimeAuthorizers


def uid_key(uid: str) -> str:
    """OCPI's uid is a CiString(36): case-insensitive, as OCPP's idTag."""
    return uid.lower()


async def record_token(conn: asyncpg.Connection, token: PartnerTokenChanged) -> bool:
    """Apply a partner's token; the newest `lastUpdated` of a token wins. Returns whether it changed."""
    done = await conn.execute(
        """
        INSERT INTO sessions.partner_tokens AS t
            (country_code, party_id, uid_key, type, uid, contract_id, valid, whitelist, group_id, last_updated)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
        ON CONFLICT (country_code, party_id, uid_key, type) DO UPDATE SET uid = EXCLUDED.uid,
            contract_id = EXCLUDED.contract_id, valid = EXCLUDED.valid, whitelist = EXCLUDED.whitelist,
            group_id = EXCLUDED.group_id, last_updated = EXCLUDED.last_updated, copied_at = now()
        WHERE EXCLUDED.last_updated > t.last_updated
        """,
        token.countryCode.upper(), token.partyId.upper(), uid_key(token.uid), token.type, token.uid, token.contractId,
        token.valid, token.whitelist, token.groupId, token.lastUpdated,
    )
    return done != "INSERT 0 0"


async def record_authorizers(conn: asyncpg.Connection, authorizers: RealtimeAuthorizers) -> bool:
    done = await conn.execute(
        """
        INSERT INTO sessions.realtime_authorizers AS r (singleton, parties, at) VALUES (true, $1::jsonb, $2)
        ON CONFLICT (singleton) DO UPDATE SET parties = EXCLUDED.parties, at = EXCLUDED.at WHERE EXCLUDED.at > r.at
        """,
        [p.model_dump() for p in authorizers.parties], authorizers.at,
    )
    return done != "INSERT 0 0"


async def anyone_authorizes_realtime(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval(
        "SELECT jsonb_array_length(parties) > 0 FROM sessions.realtime_authorizers WHERE singleton"))


# Of several partners' tokens with one uid (types differ, or two partners), a valid one before an
# invalid one, then the newest.
_BEST = "ORDER BY uid_key, valid DESC, last_updated DESC, country_code, party_id, type"


async def tokens_for(conn: asyncpg.Connection, id_tags: Sequence[str]) -> dict[str, asyncpg.Record]:
    """The partner token each idTag is (by lower-cased idTag), where one is."""
    rows = await conn.fetch(
        f"SELECT DISTINCT ON (uid_key) * FROM sessions.partner_tokens WHERE uid_key = ANY($1::text[]) {_BEST}",
        sorted({uid_key(tag) for tag in id_tags}),
    )
    return {row["uid_key"]: row for row in rows}


def ref_of(row: asyncpg.Record) -> PartnerTokenRef:
    return PartnerTokenRef(countryCode=row["country_code"], partyId=row["party_id"], uid=row["uid"], type=row["type"],
                           contractId=row["contract_id"])


async def record_partner_judgments(
    conn: asyncpg.Connection, judged: Sequence[tuple[UUID, PartnerTokenRef | None, str | None, bool]],
) -> None:
    """Per session: the partner token it was started with, the partner's verdict (None: to be asked
    in real time), and whether it is being asked now. Written once: a session's first judgment
    stands (a real-time answer completes it: `record_realtime_answer`)."""
    if not judged:
        return
    await conn.execute(
        """
        UPDATE sessions.sessions s SET partner_token = j.token, partner_verdict = j.verdict,
            realtime_asked_at = CASE WHEN j.asking THEN now() END
        FROM unnest($1::uuid[], $2::jsonb[], $3::text[], $4::boolean[]) AS j(id, token, verdict, asking)
        WHERE s.session_id = j.id AND s.partner_verdict IS NULL AND s.realtime_asked_at IS NULL
        """,
        [j[0] for j in judged], [j[1].model_dump() if j[1] else None for j in judged], [j[2] for j in judged],
        [j[3] for j in judged],
    )


async def record_realtime_answer(conn: asyncpg.Connection, session_id: UUID, verdict: str,
                                 token: PartnerTokenRef | None) -> bool:
    """The real-time answer for a session that was waiting for it (once)."""
    done = await conn.execute(
        """
        UPDATE sessions.sessions SET partner_verdict = $2, partner_token = coalesce($3::jsonb, partner_token)
        WHERE session_id = $1 AND partner_verdict IS NULL AND realtime_asked_at IS NOT NULL
        """,
        session_id, verdict, token.model_dump() if token else None,
    )
    return done != "UPDATE 0"


async def still_waiting(conn: asyncpg.Connection, *, asked_before: datetime, limit: int) -> list[asyncpg.Record]:
    """Sessions asked about in real time before `asked_before` that never got their answer (the
    process that asked stopped): asked again, the clock restarted."""
    return await conn.fetch(
        """
        UPDATE sessions.sessions SET realtime_asked_at = now()
        WHERE session_id IN (
            SELECT session_id FROM sessions.sessions
            WHERE realtime_asked_at < $1 AND partner_verdict IS NULL ORDER BY realtime_asked_at LIMIT $2
            FOR UPDATE SKIP LOCKED
        )
        RETURNING session_id, id_tag, charge_point_id, coalesce(connector_id, connector_hint) AS connector_id, partner_token
        """,
        asked_before, limit,
    )


def realtime_question(row: asyncpg.Record | dict[str, Any]) -> tuple[UUID, str, str, int | None, PartnerTokenRef | None]:
    token = row["partner_token"]
    return (row["session_id"], row["id_tag"], row["charge_point_id"], row["connector_id"],
            PartnerTokenRef.model_validate(token) if token else None)
