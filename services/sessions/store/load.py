"""SQL of site power limits (CONTRACT section 13): each site's limit and when its shares are due,
the sessions' power readings, what load sharing knows of each charger, the profiles sent and the
shares decided."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from services.sessions.eras import SessionFacts, SessionKey

# --- what changes a site's shares ------------------------------------------------------------------


async def record_limit(conn: asyncpg.Connection, site_id: UUID, max_power_w: int | None, *, at: datetime) -> None:
    """Billing's limit, newest `at` wins; a change makes the site's shares due at once."""
    await conn.execute(
        """
        INSERT INTO sessions.site_limits AS l (site_id, max_power_w, limit_at, due_at) VALUES ($1, $2, $3, now())
        ON CONFLICT (site_id) DO UPDATE SET max_power_w = EXCLUDED.max_power_w, limit_at = EXCLUDED.limit_at,
            due_at = CASE WHEN l.max_power_w IS DISTINCT FROM EXCLUDED.max_power_w THEN now() ELSE l.due_at END
        WHERE EXCLUDED.limit_at > l.limit_at
        """,
        site_id, max_power_w, at,
    )


async def make_due(conn: asyncpg.Connection, *, charge_point_ids: Sequence[str] = (), session_ids: Sequence[UUID] = (),
                   site_ids: Sequence[UUID] = ()) -> None:
    """The shares of the limited sites of these chargers, sessions and sites are due now."""
    await conn.execute(
        """
        UPDATE sessions.site_limits SET due_at = now()
        WHERE max_power_w IS NOT NULL AND site_id IN (
            SELECT site_id FROM sessions.chargers WHERE charge_point_id = ANY($1::text[])
            UNION SELECT c.site_id FROM sessions.chargers c JOIN sessions.sessions s USING (charge_point_id)
                  WHERE s.session_id = ANY($2::uuid[])
            UNION SELECT unnest($3::uuid[]))
        """,
        list(charge_point_ids), list(session_ids), list(site_ids),
    )


async def record_boots(conn: asyncpg.Connection, boots: dict[str, datetime]) -> None:
    """Chargers that booted (received at, by our clock): the profiles they accepted before may be
    gone, their fail-safe goes out again, and a flag is lifted (they are tried again); a clearing
    that never reached them is tried again."""
    if not boots:
        return
    await conn.execute(
        """
        INSERT INTO sessions.load_chargers AS l (charge_point_id, booted_at, default_due)
        SELECT cp, at, true FROM unnest($1::text[], $2::timestamptz[]) AS b (cp, at)
        ON CONFLICT (charge_point_id) DO UPDATE SET booted_at = EXCLUDED.booted_at, default_due = true,
            flagged_at = NULL, flag_reason = NULL, clear_due = true
        WHERE l.booted_at IS NULL OR EXCLUDED.booted_at > l.booted_at
        """,
        list(boots), list(boots.values()),
    )


async def record_power(conn: asyncpg.Connection, sessions: dict[SessionKey, SessionFacts], ids: dict[SessionKey, UUID]) -> None:
    rows = [(ids[k], r) for k, facts in sessions.items() for r in facts.power]
    if rows:
        await conn.execute(
            """
            INSERT INTO sessions.power_readings (session_id, event_id, position, ts, received_at, watts)
            SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::timestamptz[], $5::timestamptz[], $6::numeric[])
            ON CONFLICT DO NOTHING
            """,
            [r[0] for r in rows], [r[1].event_id for r in rows], [r[1].position for r in rows], [r[1].ts for r in rows],
            [r[1].received_at for r in rows], [r[1].watts for r in rows],
        )


async def release(conn: asyncpg.Connection, *, charge_point_ids: Sequence[str] = (), site_id: UUID | None = None) -> None:
    """These chargers (or the chargers of this site) may hold profiles of a limit they are no longer
    under: look at them (`clear_due`)."""
    await conn.execute(
        """
        INSERT INTO sessions.load_chargers AS l (charge_point_id, clear_due)
        SELECT charge_point_id, true FROM sessions.chargers WHERE charge_point_id = ANY($1::text[]) OR site_id = $2
        ON CONFLICT (charge_point_id) DO UPDATE SET clear_due = true
        """,
        list(charge_point_ids), site_id,
    )


# --- the owner's reads, for one site -------------------------------------------------------------


async def due_sites(conn: asyncpg.Connection, *, limit: int) -> list[UUID]:
    return [r["site_id"] for r in await conn.fetch(
        "SELECT site_id FROM sessions.site_limits WHERE due_at <= now() ORDER BY due_at LIMIT $1", limit)]


async def lock_site(conn: asyncpg.Connection, site_id: UUID) -> asyncpg.Record | None:
    """The site's limit, locked for this computation; None when another process is computing it."""
    return await conn.fetchrow("SELECT * FROM sessions.site_limits WHERE site_id = $1 FOR UPDATE SKIP LOCKED", site_id)


async def site_chargers(conn: asyncpg.Connection, site_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        """
        SELECT c.charge_point_id, c.last_received_at IS NOT NULL AS heard,
               l.rate_unit, l.unit_asked_at, l.booted_at, l.default_due, l.flagged_at, l.flag_reason,
               EXISTS (SELECT 1 FROM sessions.load_profiles p WHERE p.charge_point_id = c.charge_point_id
                       AND p.action = 'ClearChargingProfile' AND p.status = 'Pending') AS clearing
        FROM sessions.chargers c LEFT JOIN sessions.load_chargers l USING (charge_point_id)
        WHERE c.site_id = $1 ORDER BY c.charge_point_id
        """,
        site_id,
    )


async def site_connectors(conn: asyncpg.Connection, charge_point_ids: Sequence[str]) -> list[asyncpg.Record]:
    """Every connector known by its status or its specs (connector 0, the charger itself, left out)."""
    return await conn.fetch(
        """
        SELECT coalesce(c.charge_point_id, s.charge_point_id) AS charge_point_id,
               coalesce(c.connector_id, s.connector_id) AS connector_id, s.power_type, s.max_voltage, s.max_electric_power
        FROM (SELECT * FROM sessions.connectors WHERE connector_id >= 1 AND charge_point_id = ANY($1::text[])) c
        FULL JOIN (SELECT * FROM sessions.connector_specs WHERE charge_point_id = ANY($1::text[])) s
          ON s.charge_point_id = c.charge_point_id AND s.connector_id = c.connector_id
        ORDER BY 1, 2
        """,
        list(charge_point_ids),
    )


async def active_sessions(conn: asyncpg.Connection, charge_point_ids: Sequence[str]) -> list[asyncpg.Record]:
    """The Active sessions of these chargers on a known connector, each with its two newest power
    readings (`readings`: [{watts, receivedAt}], newest first)."""
    return await conn.fetch(
        """
        SELECT s.session_id, s.charge_point_id, s.connector_id, s.transaction_id,
               coalesce((SELECT jsonb_agg(jsonb_build_object('watts', p.watts, 'receivedAt', p.received_at) ORDER BY p.ts DESC)
                         FROM (SELECT * FROM sessions.power_readings r WHERE r.session_id = s.session_id
                               ORDER BY r.ts DESC, r.event_id DESC, r.position LIMIT 2) p), '[]') AS readings
        FROM sessions.sessions s
        WHERE s.charge_point_id = ANY($1::text[]) AND s.status = 'Active' AND s.ended_at IS NULL AND s.closed_at IS NULL
          AND s.connector_id IS NOT NULL
        ORDER BY s.charge_point_id, s.connector_id, s.started_at
        """,
        list(charge_point_ids),
    )


async def open_profiles(conn: asyncpg.Connection, charge_point_ids: Sequence[str], session_ids: Sequence[UUID]) -> list[asyncpg.Record]:
    """The profiles that may be in force: of each slot (a charger's default, a session's profile),
    its last Accepted one and every one sent after it; and every profile a session accepted (what
    limited it when a reading was taken). None sent before the slot was last cleared. Oldest first."""
    return await conn.fetch(
        """
        SELECT * FROM (
            SELECT p.*, max(sent_at) FILTER (WHERE status = 'Accepted' AND action = 'SetChargingProfile') OVER slot AS last_accepted,
                        max(sent_at) FILTER (WHERE action = 'ClearChargingProfile') OVER slot AS last_cleared
            FROM sessions.load_profiles p
            WHERE (purpose = 'TxDefaultProfile' AND charge_point_id = ANY($1::text[])) OR session_id = ANY($2::uuid[])
            WINDOW slot AS (PARTITION BY charge_point_id, purpose, session_id)
        ) p
        WHERE action = 'SetChargingProfile' AND (last_cleared IS NULL OR sent_at > last_cleared)
          AND (last_accepted IS NULL OR sent_at >= last_accepted OR (purpose = 'TxProfile' AND status = 'Accepted'))
        ORDER BY sent_at
        """,
        list(charge_point_ids), list(session_ids),
    )


async def released_chargers(conn: asyncpg.Connection, *, limit: int) -> list[str]:
    """Chargers to look at for clearing, locked for this look (others skipped)."""
    return [r["charge_point_id"] for r in await conn.fetch(
        "SELECT charge_point_id FROM sessions.load_chargers WHERE clear_due ORDER BY charge_point_id "
        "LIMIT $1 FOR UPDATE SKIP LOCKED", limit)]


async def held_profiles(conn: asyncpg.Connection, charge_point_ids: Sequence[str]) -> list[asyncpg.Record]:
    """Of these chargers, those whose site has no limit: each profile of ours they may still hold
    (the newest of its connector and purpose, sent after that slot was last cleared, not refused,
    a TxProfile only while its session is open), with the site it was sent for."""
    return await conn.fetch(
        """
        WITH cleared AS (
            SELECT charge_point_id, connector_id, purpose, max(sent_at) AS cleared_at FROM sessions.load_profiles
            WHERE action = 'ClearChargingProfile' AND status <> 'NotDelivered' AND charge_point_id = ANY($1::text[])
            GROUP BY 1, 2, 3)
        SELECT DISTINCT ON (p.charge_point_id, p.connector_id, p.purpose)
               p.site_id, p.charge_point_id, p.connector_id, p.purpose, p.session_id, p.transaction_id
        FROM sessions.load_profiles p
        JOIN sessions.chargers c USING (charge_point_id)
        LEFT JOIN sessions.site_limits l ON l.site_id = c.site_id
        LEFT JOIN cleared k ON k.charge_point_id = p.charge_point_id AND k.connector_id = p.connector_id AND k.purpose = p.purpose
        LEFT JOIN sessions.sessions s ON s.session_id = p.session_id
        WHERE p.charge_point_id = ANY($1::text[]) AND p.action = 'SetChargingProfile'
          AND p.status IN ('Accepted', 'Pending', 'Unknown') AND (k.cleared_at IS NULL OR p.sent_at > k.cleared_at)
          AND l.max_power_w IS NULL
          AND (p.purpose = 'TxDefaultProfile' OR (s.ended_at IS NULL AND s.closed_at IS NULL))
        ORDER BY p.charge_point_id, p.connector_id, p.purpose, p.sent_at DESC
        """,
        list(charge_point_ids),
    )


# --- the owner's writes ----------------------------------------------------------------------------


async def record_profiles(conn: asyncpg.Connection, profiles: Sequence[dict]) -> None:
    """Profiles set (with their limit) or cleared (`action`, no limit)."""
    if profiles:
        columns = ("profile_id", "site_id", "charge_point_id", "connector_id", "purpose", "session_id", "transaction_id",
                   "limit_w", "rate_unit", "limit_value", "action")
        await conn.executemany(
            f"INSERT INTO sessions.load_profiles ({', '.join(columns)}) VALUES ({', '.join(f'${i}' for i in range(1, 12))})",
            [tuple(p.get(c) for c in columns[:-1]) + (p.get("action", "SetChargingProfile"),) for p in profiles],
        )


async def releases_looked_at(conn: asyncpg.Connection, charge_point_ids: Sequence[str]) -> None:
    await conn.execute("UPDATE sessions.load_chargers SET clear_due = false WHERE charge_point_id = ANY($1::text[])",
                       list(charge_point_ids))


async def defaults_sent(conn: asyncpg.Connection, charge_point_ids: Sequence[str]) -> None:
    await conn.execute("UPDATE sessions.load_chargers SET default_due = false WHERE charge_point_id = ANY($1::text[])",
                       list(charge_point_ids))


async def units_asked(conn: asyncpg.Connection, charge_point_ids: Sequence[str]) -> None:
    await conn.execute(
        """
        INSERT INTO sessions.load_chargers AS l (charge_point_id, unit_asked_at) SELECT unnest($1::text[]), now()
        ON CONFLICT (charge_point_id) DO UPDATE SET unit_asked_at = now()
        """,
        list(charge_point_ids),
    )


async def flag_chargers(conn: asyncpg.Connection, reasons: dict[str, str]) -> None:
    """Counted at their maximum from now on (until they boot again)."""
    if reasons:
        await conn.execute(
            """
            INSERT INTO sessions.load_chargers AS l (charge_point_id, flagged_at, flag_reason)
            SELECT cp, now(), reason FROM unnest($1::text[], $2::text[]) AS f (cp, reason)
            ON CONFLICT (charge_point_id) DO UPDATE SET flagged_at = coalesce(l.flagged_at, now()),
                flag_reason = coalesce(l.flag_reason, EXCLUDED.flag_reason)
            """,
            list(reasons), list(reasons.values()),
        )


async def save_computation(conn: asyncpg.Connection, site_id: UUID, *, shares: Sequence[tuple[UUID, int, int]],
                           idle_w: int | None, measured_w: int, over_limit: bool, next_in_seconds: float | None) -> None:
    """The shares decided now ((session, cap, share)), and when the site is due again."""
    await conn.execute("DELETE FROM sessions.load_shares WHERE site_id = $1", site_id)
    if shares:
        await conn.executemany(
            "INSERT INTO sessions.load_shares (session_id, site_id, cap_w, share_w, computed_at) VALUES ($1, $2, $3, $4, now()) "
            "ON CONFLICT (session_id) DO UPDATE SET site_id = EXCLUDED.site_id, cap_w = EXCLUDED.cap_w, "
            "share_w = EXCLUDED.share_w, computed_at = EXCLUDED.computed_at",
            [(session_id, site_id, cap, share) for session_id, cap, share in shares],
        )
    await conn.execute(
        """
        UPDATE sessions.site_limits SET computed_at = now(), idle_w = $2, measured_w = $3, over_limit = $4,
            due_at = CASE WHEN $5::float8 IS NULL THEN NULL ELSE now() + make_interval(secs => $5) END
        WHERE site_id = $1
        """,
        site_id, idle_w, measured_w, over_limit, next_in_seconds,
    )


# --- answers -----------------------------------------------------------------------------------------


async def record_answer(conn: asyncpg.Connection, profile_id: UUID, status: str, error: str | None) -> asyncpg.Record | None:
    """A profile's outcome, once; None when it was known already (or is no profile of ours)."""
    return await conn.fetchrow(
        "UPDATE sessions.load_profiles SET status = $2, error = $3, answered_at = now() "
        "WHERE profile_id = $1 AND status = 'Pending' RETURNING *",
        profile_id, status, error,
    )


async def record_unit(conn: asyncpg.Connection, charge_point_id: str, unit: str | None) -> None:
    """The unit the charger's profiles take; None: ask again (the question never reached it)."""
    await conn.execute(
        """
        INSERT INTO sessions.load_chargers AS l (charge_point_id, rate_unit) VALUES ($1, $2)
        ON CONFLICT (charge_point_id) DO UPDATE SET rate_unit = EXCLUDED.rate_unit,
            unit_asked_at = CASE WHEN EXCLUDED.rate_unit IS NULL THEN NULL ELSE l.unit_asked_at END
        """,
        charge_point_id, unit,
    )


async def sites_over_limit(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT count(*) FROM sessions.site_limits WHERE over_limit AND max_power_w IS NOT NULL")


# --- GET /v1/sites/{siteId}/load ---------------------------------------------------------------------


async def site_limit(conn: asyncpg.Connection, site_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM sessions.site_limits WHERE site_id = $1", site_id)


async def shares_of(conn: asyncpg.Connection, site_id: UUID) -> list[asyncpg.Record]:
    """The site's Active sessions with the share each was given and its newest power reading."""
    return await conn.fetch(
        """
        SELECT s.session_id, s.charge_point_id, s.connector_id, s.transaction_id, sh.cap_w, sh.share_w,
               r.watts AS measured_w, r.ts AS measured_at
        FROM sessions.sessions s JOIN sessions.chargers c USING (charge_point_id)
        LEFT JOIN sessions.load_shares sh ON sh.session_id = s.session_id
        LEFT JOIN LATERAL (SELECT watts, ts FROM sessions.power_readings p WHERE p.session_id = s.session_id
                           ORDER BY ts DESC LIMIT 1) r ON true
        WHERE c.site_id = $1 AND s.status = 'Active' AND s.ended_at IS NULL AND s.closed_at IS NULL
        ORDER BY s.charge_point_id, s.connector_id, s.started_at
        """,
        site_id,
    )


async def recent_profiles(conn: asyncpg.Connection, site_id: UUID, *, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM sessions.load_profiles WHERE site_id = $1 ORDER BY sent_at DESC LIMIT $2",
                            site_id, limit)
