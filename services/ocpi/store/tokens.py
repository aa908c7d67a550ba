"""SQL of the partners' tokens (Tokens module, RECEIVER) and of the partners that answer
real-time authorization."""
from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg


def key(country_code: str, party_id: str, uid: str, type_: str) -> tuple[str, str, str, str]:
    return country_code.upper(), party_id.upper(), uid.lower(), type_


async def get(conn: asyncpg.Connection, country_code: str, party_id: str, uid: str, type_: str, *,
              lock: bool = False) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM ocpi.tokens WHERE country_code = $1 AND party_id = $2 AND uid_key = $3 AND type = $4"
        + (" FOR UPDATE" if lock else ""), *key(country_code, party_id, uid, type_))


async def store(conn: asyncpg.Connection, partner_id: UUID, token: dict[str, Any], last_updated: datetime) -> bool:
    """Keep the Token unless the one stored is newer; returns whether it was written."""
    done = await conn.execute(
        """
        INSERT INTO ocpi.tokens AS t (country_code, party_id, uid_key, type, partner_id, token, last_updated)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (country_code, party_id, uid_key, type) DO UPDATE
            SET partner_id = EXCLUDED.partner_id, token = EXCLUDED.token, last_updated = EXCLUDED.last_updated
        WHERE EXCLUDED.last_updated >= t.last_updated
        """,
        *key(token["country_code"], token["party_id"], token["uid"], token["type"]), partner_id, token, last_updated,
    )
    return done != "INSERT 0 0"


async def realtime_partners(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Registered partners with a Tokens SENDER endpoint: they can answer real-time authorization."""
    return await conn.fetch(
        "SELECT * FROM ocpi.partners WHERE status = 'REGISTERED' AND endpoints @> $1::jsonb ORDER BY partner_id",
        [{"identifier": "tokens", "role": "SENDER"}],
    )


async def announced_authorizers(conn: asyncpg.Connection) -> list | None:
    return await conn.fetchval("SELECT parties FROM ocpi.realtime_authorizers WHERE singleton")


async def record_authorizers(conn: asyncpg.Connection, parties: list, at: datetime) -> None:
    await conn.execute(
        "INSERT INTO ocpi.realtime_authorizers (singleton, parties, at) VALUES (true, $1::jsonb, $2) "
        "ON CONFLICT (singleton) DO UPDATE SET parties = EXCLUDED.parties, at = EXCLUDED.at",
        parties, at,
    )
