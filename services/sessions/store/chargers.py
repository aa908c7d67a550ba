"""SQL of the chargers as the sessions service knows them: their state and connectors from their
events, the connector status log, the copies of the registry's facts (registration, activation,
site, handshakes) and the sites billing announced."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from services.sessions.facts import Batch
from shared.db import Filters, replace_when, substring_pattern

_BOOT_NEWER = (
    "EXCLUDED.booted_at IS NOT NULL AND (c.booted_at IS NULL "
    "OR (EXCLUDED.booted_at, EXCLUDED.boot_order, EXCLUDED.boot_event_id) > (c.booted_at, c.boot_order, c.boot_event_id))"
)
_BOOT_COLUMNS = ("vendor", "model", "firmware_version", "ocpp_version", "booted_at", "boot_order", "boot_event_id")
_SKEW_NEWER = "EXCLUDED.clock_skew_order IS NOT NULL AND (c.clock_skew_order IS NULL OR EXCLUDED.clock_skew_order > c.clock_skew_order)"
# Events of two clocks: the last received is the last seen (CONTRACT section 1, "Two clocks").
_SEEN_LATER = (
    "c.last_seen_order IS NULL OR (EXCLUDED.last_seen_order, EXCLUDED.last_seen_at) > (c.last_seen_order, c.last_seen_at)"
)


# --- charger events -----------------------------------------------------------------------------

async def record_chargers(conn: asyncpg.Connection, batch: Batch) -> None:
    """lastSeenAt is the ts of the last event received (of the charger's clock or the gateway's);
    lastHeartbeatAt only moves forward; the newest boot's fields win, the receive order of the last
    boot is kept, and the clock skew of the last charger-stamped event with a plausible ts."""
    rows = []
    for cp in sorted(batch.chargers):
        seen = batch.chargers[cp]
        order, boot = seen.boot if seen.boot else ((None, None, None), None)
        skew_order, skew = seen.clock_skew if seen.clock_skew else (None, None)
        rows.append((
            cp, seen.last_seen[1] if seen.last_seen else None, seen.last_seen[0] if seen.last_seen else None,
            seen.last_received_at, seen.last_heartbeat_at, seen.disconnected_at,
            boot.vendor if boot else None, boot.model if boot else None,
            boot.firmwareVersion if boot else None, boot.ocppVersion if boot else None,
            order[0], order[1] or 0, order[2], seen.last_boot_order, skew, skew_order,
        ))
    if not rows:
        return
    await conn.execute(
        f"""
        INSERT INTO sessions.chargers AS c (charge_point_id, last_seen_at, last_seen_order, last_received_at, last_heartbeat_at,
                                            disconnected_at, {", ".join(_BOOT_COLUMNS)}, last_boot_order, clock_skew_seconds,
                                            clock_skew_order)
        SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::bigint[], $4::timestamptz[], $5::timestamptz[],
                             $6::timestamptz[], $7::text[], $8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::bigint[],
                             $13::text[], $14::bigint[], $15::float8[], $16::bigint[])
        ON CONFLICT (charge_point_id) DO UPDATE SET
            {replace_when(_SEEN_LATER, ("last_seen_at", "last_seen_order"), "c")},
            last_received_at = GREATEST(c.last_received_at, EXCLUDED.last_received_at),
            disconnected_at = GREATEST(c.disconnected_at, EXCLUDED.disconnected_at),
            last_heartbeat_at = GREATEST(c.last_heartbeat_at, EXCLUDED.last_heartbeat_at),
            last_boot_order = GREATEST(c.last_boot_order, EXCLUDED.last_boot_order),
            {replace_when(_BOOT_NEWER, _BOOT_COLUMNS, "c")},
            {replace_when(_SKEW_NEWER, ("clock_skew_seconds", "clock_skew_order"), "c")},
            updated_at = now()
        """,
        *map(list, zip(*rows)),
    )


async def record_connector_statuses(conn: asyncpg.Connection, batch: Batch) -> list[asyncpg.Record]:
    """Keep the newest status per connector by (ts, receive order, eventId); returns the rows that changed."""
    if not batch.connectors:
        return []
    keys = sorted(batch.connectors)
    statuses = [batch.connectors[k] for k in keys]
    return await conn.fetch(
        """
        INSERT INTO sessions.connectors AS c (charge_point_id, connector_id, status, error_code, status_at, receive_order, event_id)
        SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::timestamptz[], $6::bigint[], $7::text[])
        ON CONFLICT (charge_point_id, connector_id) DO UPDATE SET
            status = EXCLUDED.status, error_code = EXCLUDED.error_code,
            status_at = EXCLUDED.status_at, receive_order = EXCLUDED.receive_order, event_id = EXCLUDED.event_id
        WHERE (EXCLUDED.status_at, EXCLUDED.receive_order, EXCLUDED.event_id) > (c.status_at, c.receive_order, c.event_id)
        RETURNING c.charge_point_id, c.connector_id, c.status, c.error_code, c.status_at, c.receive_order, c.event_id
        """,
        [k[0] for k in keys], [k[1] for k in keys], [s.status for s in statuses], [s.error_code for s in statuses],
        [s.order[0] for s in statuses], [s.order[1] for s in statuses], [s.order[2] for s in statuses],
    )


async def record_status_log(conn: asyncpg.Connection, batch: Batch) -> None:
    """Every connector status, once (by eventId): when a session's car was charging or parked."""
    if not batch.status_log:
        return
    log = batch.status_log
    await conn.execute(
        """
        INSERT INTO sessions.connector_status_log (charge_point_id, connector_id, ts, receive_order, event_id, status)
        SELECT * FROM unnest($1::text[], $2::int[], $3::timestamptz[], $4::bigint[], $5::text[], $6::text[])
        ON CONFLICT DO NOTHING
        """,
        [e[0] for e in log], [e[1] for e in log], [e[2].order[0] for e in log], [e[2].order[1] for e in log],
        [e[2].order[2] for e in log], [e[2].status for e in log],
    )


# --- from the registry and billing ------------------------------------------------------------

async def record_registration(
    conn: asyncpg.Connection, charge_point_id: str, *, at: datetime, is_active: bool | None = None,
    site_id: UUID | None = None, registered: bool = False,
) -> None:
    """Registry facts, each field last-writer-wins by the message's `at`."""
    await conn.execute(
        """
        INSERT INTO sessions.chargers AS c (charge_point_id, registered, is_active, active_at, site_id, site_at)
        VALUES ($1, $2, coalesce($3, false), CASE WHEN $3::boolean IS NOT NULL THEN $5::timestamptz END,
                $4, CASE WHEN $4::uuid IS NOT NULL THEN $5::timestamptz END)
        ON CONFLICT (charge_point_id) DO UPDATE SET
            registered = c.registered OR EXCLUDED.registered,
            is_active = CASE WHEN $3::boolean IS NOT NULL AND (c.active_at IS NULL OR $5 > c.active_at) THEN $3 ELSE c.is_active END,
            active_at = CASE WHEN $3::boolean IS NOT NULL AND (c.active_at IS NULL OR $5 > c.active_at) THEN $5 ELSE c.active_at END,
            site_id = CASE WHEN $4::uuid IS NOT NULL AND (c.site_at IS NULL OR $5 > c.site_at) THEN $4 ELSE c.site_id END,
            site_at = CASE WHEN $4::uuid IS NOT NULL AND (c.site_at IS NULL OR $5 > c.site_at) THEN $5 ELSE c.site_at END,
            updated_at = now()
        """,
        charge_point_id, registered, is_active, site_id, at,
    )


async def record_site(conn: asyncpg.Connection, site_id: UUID, *, name: str, created_at: datetime) -> None:
    await conn.execute("INSERT INTO sessions.sites (site_id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                       site_id, name, created_at)


async def unknown_sites(conn: asyncpg.Connection, site_ids: Sequence[UUID]) -> list[UUID]:
    """Those of `site_ids` billing never announced."""
    known = {r["site_id"] for r in await conn.fetch("SELECT site_id FROM sessions.sites WHERE site_id = ANY($1::uuid[])",
                                                    list(site_ids))}
    return [s for s in site_ids if s not in known]


async def record_handshake(conn: asyncpg.Connection, charge_point_id: str, *, allowed: bool, at: datetime) -> None:
    """A handshake: the charger was heard of at `at`; a failure counts (a charger nobody registered too)."""
    await conn.execute(
        """
        INSERT INTO sessions.chargers AS c (charge_point_id, last_handshake_at, auth_failures, last_auth_failure_at)
        VALUES ($1, $2::timestamptz, CASE WHEN $3::boolean THEN 0 ELSE 1 END,
                CASE WHEN $3::boolean THEN NULL ELSE $2::timestamptz END)
        ON CONFLICT (charge_point_id) DO UPDATE SET
            last_handshake_at = GREATEST(c.last_handshake_at, EXCLUDED.last_handshake_at),
            auth_failures = c.auth_failures + EXCLUDED.auth_failures,
            last_auth_failure_at = GREATEST(c.last_auth_failure_at, EXCLUDED.last_auth_failure_at),
            updated_at = now()
        """,
        charge_point_id, at, allowed,
    )


# --- reads ---------------------------------------------------------------------------------------

async def charger(conn: asyncpg.Connection, charge_point_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM sessions.chargers WHERE charge_point_id = $1", charge_point_id)


# A connector is known by its reported status, its operator-given specs, or both.
_CONNECTORS = (
    "SELECT coalesce(c.charge_point_id, s.charge_point_id) AS charge_point_id,"
    " coalesce(c.connector_id, s.connector_id) AS connector_id, c.status, c.error_code, c.status_at,"
    " s.standard, s.format, s.power_type, s.max_voltage, s.max_amperage, s.max_electric_power"
    " FROM sessions.connectors c FULL JOIN sessions.connector_specs s"
    " ON s.charge_point_id = c.charge_point_id AND s.connector_id = c.connector_id"
)


async def connectors(conn: asyncpg.Connection, charge_point_id: str, *, after: int | None, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT * FROM ({_CONNECTORS}) k WHERE charge_point_id = $1 AND ($2::int IS NULL OR connector_id > $2) "
        "ORDER BY connector_id LIMIT $3",
        charge_point_id, after, limit + 1,
    )


async def connector(conn: asyncpg.Connection, charge_point_id: str, connector_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT * FROM ({_CONNECTORS}) k WHERE charge_point_id = $1 AND connector_id = $2",
                               charge_point_id, connector_id)


async def replace_connector_specs(conn: asyncpg.Connection, charge_point_id: str, connector_id: int,
                                  specs: dict[str, object]) -> datetime:
    """Replace the connector's specs; returns when."""
    names = list(specs)
    return await conn.fetchval(
        f"INSERT INTO sessions.connector_specs (charge_point_id, connector_id, {', '.join(names)}, updated_at) "
        f"VALUES ($1, $2, {', '.join(f'${i}' for i in range(3, len(names) + 3))}, clock_timestamp()) "
        f"ON CONFLICT (charge_point_id, connector_id) DO UPDATE SET "
        f"{', '.join(f'{n} = EXCLUDED.{n}' for n in names)}, updated_at = clock_timestamp() RETURNING updated_at",
        charge_point_id, connector_id, *specs.values())


_HEARD_AT = "greatest(last_received_at, last_handshake_at)"  # an event or a handshake, by our clock
# Online: heard within the offline window, and not disconnected since (the CPMS's own gateway
# reports ChargerDisconnected; behind the reference gateway, disconnected_at stays NULL).
_ONLINE = f"({_HEARD_AT} >= {{}} AND (disconnected_at IS NULL OR disconnected_at < {_HEARD_AT}))"


async def chargers_page(
    conn: asyncpg.Connection, *, site_id: UUID | None = None, online_since: datetime | None = None, online: bool | None = None,
    registered: bool | None = None, search: str | None = None, after: str | None = None, limit: int,
) -> list[asyncpg.Record]:
    """A page of the fleet by chargePointId; `online` against `online_since` (an event or a handshake since)."""
    filters = Filters()
    filters.add_given("site_id = {}", site_id)
    if online is True:
        filters.add(_ONLINE, online_since)
    elif online is False:
        filters.add(f"NOT coalesce({_ONLINE}, false)", online_since)
    filters.add_given("registered = {}", registered)
    filters.add_given("charge_point_id ILIKE {}", substring_pattern(search) if search is not None else None)
    filters.add_given("charge_point_id > {}", after)
    return await conn.fetch(f"SELECT *, {_HEARD_AT} AS heard_at FROM sessions.chargers WHERE {filters.where} "
                            f"ORDER BY charge_point_id LIMIT {filters.arg(limit + 1)}", *filters.args)


async def announce_connections(conn: asyncpg.Connection, *, online_since: datetime, offline_after_seconds: float,
                               charge_point_ids: Sequence[str] | None, limit: int) -> list[asyncpg.Record]:
    """Chargers whose `online` (the rule of the `online` filter) is not what was last announced of
    them, marked announced: (charge_point_id, online, at). `at` is when it became so by our clock
    (heard again; disconnected; or its last word plus the offline window), never before the last
    announcement's. Among `charge_point_ids` (locked by the caller), else any not locked now."""
    online = f"coalesce({_ONLINE.format('$1')}, false)"
    became = (f"CASE WHEN {online} THEN {_HEARD_AT} "
              f"WHEN disconnected_at IS NOT NULL AND ({_HEARD_AT} IS NULL OR disconnected_at >= {_HEARD_AT}) THEN disconnected_at "
              f"ELSE {_HEARD_AT} + make_interval(secs => $2) END")
    return await conn.fetch(
        f"""
        UPDATE sessions.chargers SET announced_online = {online},
            announced_at = greatest({became}, announced_at + interval '1 millisecond')
        WHERE charge_point_id IN (
            SELECT charge_point_id FROM sessions.chargers
            WHERE ($3::text[] IS NULL OR charge_point_id = ANY($3::text[])) AND ({_HEARD_AT} IS NOT NULL OR disconnected_at IS NOT NULL)
              AND announced_online IS DISTINCT FROM {online}
            ORDER BY charge_point_id LIMIT $4 FOR UPDATE SKIP LOCKED)
          AND announced_online IS DISTINCT FROM {online}
        RETURNING charge_point_id, announced_online AS online, announced_at AS at
        """,
        online_since, offline_after_seconds, list(charge_point_ids) if charge_point_ids is not None else None, limit,
    )


def is_online(row: asyncpg.Record, online_since: datetime) -> bool:
    """The charger row's `online`, by the same rule as the `online` filter of `chargers_page`."""
    heard = row["heard_at"]
    return heard is not None and heard >= online_since and (row["disconnected_at"] is None or row["disconnected_at"] < heard)


async def connectors_of(conn: asyncpg.Connection, charge_point_ids: Sequence[str]) -> dict[str, list[asyncpg.Record]]:
    rows = await conn.fetch(
        f"SELECT * FROM ({_CONNECTORS}) k WHERE charge_point_id = ANY($1::text[]) ORDER BY charge_point_id, connector_id",
        list(charge_point_ids))
    found: dict[str, list[asyncpg.Record]] = {}
    for row in rows:
        found.setdefault(row["charge_point_id"], []).append(row)
    return found
