"""SQL of the sessions: their facts from the transactions' events, their meter samples, their
finalization, the figures billing priced and settled, and the reads.

A session's finalization is never updated piecemeal: `derive_sessions` recomputes it from the
stored facts (start, end, samples) every time one of them changes."""
from __future__ import annotations

from collections.abc import AsyncIterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.sessions.eras import Known, SessionFacts, SessionKey
from services.sessions.facts import Batch, Order, TransactionKey
from shared import jsonutil
from shared.db import Filters, every_row, replace_when, rows_affected
from shared.domain import MONEY_HAS_MOVED, SETTLEMENT_PROGRESS, SessionPriced, SettlementStatusChanged
from shared.events import TransactionStarted
from shared.jsonutil import format_ts


# --- from charger events --------------------------------------------------------------------------

async def parked_sessions(conn: asyncpg.Connection, batch: Batch) -> list[UUID]:
    """The sessions whose parking a connector status of the batch may end: per connector, the
    latest session that ended on it before the status (within two days)."""
    leaving = [(cp, connector, status.order[0]) for cp, connector, status in batch.status_log
               if status.status not in ("SuspendedEV", "SuspendedEVSE", "Finishing")]
    if not leaving:
        return []
    rows = await conn.fetch(
        """
        SELECT DISTINCT p.session_id FROM unnest($1::text[], $2::int[], $3::timestamptz[]) AS w(cp, connector, ts)
        JOIN LATERAL (
            SELECT s.session_id FROM sessions.sessions s
            WHERE s.charge_point_id = w.cp AND coalesce(s.connector_id, s.connector_hint) = w.connector
              AND s.ended_at < w.ts AND s.ended_at > w.ts - interval '2 days'
            ORDER BY s.ended_at DESC LIMIT 1
        ) p ON true
        """,
        [x[0] for x in leaving], [x[1] for x in leaving], [x[2] for x in leaving],
    )
    return [r["session_id"] for r in rows]


# A start (end) fact replaces the stored one when it is earlier by (ts, receive order, eventId).
_START_EARLIER = (
    "EXCLUDED.started_at IS NOT NULL AND (s.started_at IS NULL OR (EXCLUDED.started_at, EXCLUDED.start_order, "
    "EXCLUDED.start_event_id) < (s.started_at, s.start_order, s.start_event_id))"
)
_END_EARLIER = (
    "EXCLUDED.ended_at IS NOT NULL AND (s.ended_at IS NULL OR (EXCLUDED.ended_at, EXCLUDED.end_order, "
    "EXCLUDED.end_event_id) < (s.ended_at, s.end_order, s.end_event_id))"
)
_START_COLUMNS = ("connector_id", "id_tag", "meter_start_wh", "started_at", "start_order", "start_event_id")
_END_COLUMNS = ("ended_at", "end_order", "end_event_id", "meter_stop_wh", "reason", "end_id_tag")


_LAST_LATER = (
    "EXCLUDED.last_event_at IS NOT NULL AND (s.last_event_at IS NULL "
    "OR (EXCLUDED.last_event_at, EXCLUDED.last_event_order) > (s.last_event_at, s.last_event_order))"
)


_RECORD_SESSIONS = f"""
    INSERT INTO sessions.sessions AS s (charge_point_id, transaction_id, era, first_seen_at, connector_hint, starts,
        {", ".join(_START_COLUMNS)}, {", ".join(_END_COLUMNS)}, last_event_at, last_event_order,
        first_event_order, last_received_at)
    SELECT * FROM unnest($1::text[], $2::bigint[], $3::int[], $4::timestamptz[], $5::int[], $6::jsonb[],
        $7::int[], $8::text[], $9::bigint[], $10::timestamptz[], $11::bigint[], $12::text[],
        $13::timestamptz[], $14::bigint[], $15::text[], $16::bigint[], $17::text[], $18::text[],
        $19::timestamptz[], $20::bigint[], $21::bigint[], $22::timestamptz[])
    ON CONFLICT (charge_point_id, transaction_id, era) DO UPDATE SET
        first_seen_at = LEAST(s.first_seen_at, EXCLUDED.first_seen_at),
        {replace_when(_LAST_LATER, ("last_event_at", "last_event_order"))},
        first_event_order = LEAST(s.first_event_order, EXCLUDED.first_event_order),
        last_received_at = GREATEST(s.last_received_at, EXCLUDED.last_received_at),
        connector_hint = LEAST(s.connector_hint, EXCLUDED.connector_hint),
        starts = s.starts || EXCLUDED.starts,
        {replace_when(_START_EARLIER, _START_COLUMNS)},
        {replace_when(_END_EARLIER, _END_COLUMNS)}
    RETURNING session_id, charge_point_id, transaction_id, era
"""


async def known_sessions(conn: asyncpg.Connection, keys: Sequence[TransactionKey]) -> dict[TransactionKey, list[Known]]:
    """The sessions each (charger, transactionId) already has, locked for this transaction in key order."""
    rows = await conn.fetch(
        """
        SELECT s.charge_point_id, s.transaction_id, s.era, s.started_at, s.first_seen_at, s.connector_id
        FROM sessions.sessions s JOIN unnest($1::text[], $2::bigint[]) AS k(cp, tx)
            ON s.charge_point_id = k.cp AND s.transaction_id = k.tx
        ORDER BY s.charge_point_id, s.transaction_id, s.era FOR UPDATE OF s
        """,
        [k[0] for k in keys], [k[1] for k in keys],
    )
    known: dict[TransactionKey, list[Known]] = {}
    for r in rows:
        known.setdefault((r["charge_point_id"], r["transaction_id"]), []).append(
            Known(r["era"], r["started_at"], r["first_seen_at"], r["connector_id"]))
    return known


async def session_id_of(conn: asyncpg.Connection, key: SessionKey) -> UUID | None:
    return await conn.fetchval(
        "SELECT session_id FROM sessions.sessions WHERE charge_point_id = $1 AND transaction_id = $2 AND era = $3", *key)


def _start_record(order: Order, event: TransactionStarted) -> dict[str, Any]:
    return {"connectorId": event.connectorId, "idTag": event.idTag, "meterStartWh": event.meterStartWh,
            "startedAt": format_ts(order[0]), "receiveOrder": order[1]}


async def record_sessions(conn: asyncpg.Connection, sessions: dict[SessionKey, SessionFacts]) -> dict[SessionKey, UUID]:
    """A row for every session the batch mentions with its start and end facts: the earliest
    TransactionStarted and TransactionEnded by (ts, receive order, eventId), and every start by
    eventId. Keys are sorted so competing consumers lock in the same order."""
    keys = sorted(sessions)
    facts = [sessions[k] for k in keys]
    starts = [f.start or ((None, 0, None), None) for f in facts]
    ends = [f.end or ((None, 0, None), None) for f in facts]
    rows = await conn.fetch(
        _RECORD_SESSIONS,
        [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
        [f.first_seen_at for f in facts], [f.connector_hint for f in facts],
        [{o[2]: _start_record(o, e) for o, e in f.starts} for f in facts],
        [e.connectorId if e else None for _, e in starts], [e.idTag if e else None for _, e in starts],
        [e.meterStartWh if e else None for _, e in starts],
        [o[0] for o, _ in starts], [o[1] for o, _ in starts], [o[2] for o, _ in starts],
        [o[0] for o, _ in ends], [o[1] for o, _ in ends], [o[2] for o, _ in ends],
        [e.meterStopWh if e else None for _, e in ends], [e.reason if e else None for _, e in ends],
        [e.idTag if e else None for _, e in ends],
        [f.last[0] if f.last else None for f in facts], [f.last[1] if f.last else 0 for f in facts],
        [f.first_received for f in facts], [f.last_received_at for f in facts],
    )
    return {(r["charge_point_id"], r["transaction_id"], r["era"]): r["session_id"] for r in rows}


async def move_to_newer_session(conn: asyncpg.Connection, older: UUID, newer: UUID, since: datetime) -> None:
    """A reused transaction id's new session takes over what the older one held from `since` on:
    samples, and an end fact the older one cannot have had (it came before the new start did)."""
    await conn.execute(
        """
        DELETE FROM sessions.meter_samples o USING sessions.meter_samples n
        WHERE o.session_id = $1 AND o.ts >= $3 AND n.session_id = $2 AND n.event_id = o.event_id AND n.position = o.position
        """,
        older, newer, since,
    )
    await conn.execute("UPDATE sessions.meter_samples SET session_id = $2 WHERE session_id = $1 AND ts >= $3", older, newer, since)
    ended = ", ".join(f"{col} = o.{col}" for col in _END_COLUMNS)
    await conn.execute(
        f"""
        UPDATE sessions.sessions n SET {ended} FROM sessions.sessions o
        WHERE n.session_id = $2 AND o.session_id = $1 AND o.ended_at >= $3
          AND (n.ended_at IS NULL OR (o.ended_at, o.end_order, o.end_event_id) < (n.ended_at, n.end_order, n.end_event_id))
        """,
        older, newer, since,
    )
    cleared = ", ".join(f"{col} = NULL" for col in _END_COLUMNS if col != "end_order")
    await conn.execute(f"UPDATE sessions.sessions SET {cleared}, end_order = 0 WHERE session_id = $1 AND ended_at >= $2",
                       older, since)


async def record_samples(conn: asyncpg.Connection, sessions: dict[SessionKey, SessionFacts], ids: dict[SessionKey, UUID]) -> tuple[int, int]:
    """Store the energy samples; a sample already stored keeps its newest receive order (a
    charger's resend is its latest word). Returns (stored, already known)."""
    rows = [(ids[k], s) for k, facts in sessions.items() for s in facts.samples]
    if not rows:
        return 0, 0
    inserted = await conn.fetch(
        """
        INSERT INTO sessions.meter_samples AS m (session_id, event_id, position, ts, receive_order, measurand, value_wh)
        SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::timestamptz[], $5::bigint[], $6::text[], $7::numeric[])
        ON CONFLICT (session_id, event_id, position) DO UPDATE SET receive_order = EXCLUDED.receive_order
        WHERE EXCLUDED.receive_order > m.receive_order
        RETURNING xmax = 0 AS inserted
        """,
        [r[0] for r in rows], [r[1].event_id for r in rows], [r[1].position for r in rows],
        [r[1].ts for r in rows], [r[1].receive_order for r in rows], [r[1].measurand for r in rows],
        [r[1].value_wh for r in rows],
    )
    stored = sum(1 for r in inserted if r["inserted"])
    return stored, len(rows) - stored


# --- finalization --------------------------------------------------------------------------------

# The energy ladder of CONTRACT section 2 for the sessions in $1, in one statement. A session is
# finalized once it has an end fact (or an operator closed it); until then nothing is derived.
# It changes (new revision, finalizedAt, an outbox message) only when what it would publish
# differs from what it last published, or when $2 forces it. Once money has moved the session
# is still derived (billing refuses the new revision; the difference shows as unbilledEnergyWh).
_DERIVE = """
WITH ended AS (
    SELECT * FROM sessions.sessions
    WHERE session_id = ANY($1::uuid[]) AND (ended_at IS NOT NULL OR closed_at IS NOT NULL)
      AND samples_pruned_at IS NULL  -- frozen once its samples are gone (services/sessions/retention.py)
), register AS (
    SELECT DISTINCT ON (session_id) session_id, value_wh FROM sessions.meter_samples
    WHERE session_id IN (SELECT session_id FROM ended) AND measurand = 'Register'
    ORDER BY session_id, ts DESC, receive_order DESC, value_wh DESC
), interval_sum AS (
    SELECT session_id, sum(value_wh) AS total FROM sessions.meter_samples
    WHERE session_id IN (SELECT session_id FROM ended) AND measurand = 'Interval'
    GROUP BY session_id
), parked AS (
    -- After its StopTransaction a car stays parked until its connector leaves SuspendedEV,
    -- SuspendedEVSE and Finishing (unplugged: Available, or the next charge's Preparing).
    SELECT e.session_id, (
        SELECT min(l.ts) FROM sessions.connector_status_log l
        WHERE l.charge_point_id = e.charge_point_id AND l.connector_id = coalesce(e.connector_id, e.connector_hint)
          AND l.ts > e.ended_at AND l.status NOT IN ('SuspendedEV', 'SuspendedEVSE', 'Finishing')
    ) AS parked_until
    FROM ended e WHERE e.ended_at IS NOT NULL
), rungs AS (
    SELECT e.session_id, e.finalized_digest, e.session_id = ANY($2::uuid[]) AS forced, e.energy_wh AS previous_energy_wh,
        p.parked_until,
        jsonb_build_array(e.started_at, e.ended_at, coalesce(e.connector_id, e.connector_hint))
            || CASE WHEN p.parked_until IS NOT NULL THEN jsonb_build_array(p.parked_until) ELSE '[]'::jsonb END
            || CASE WHEN e.partner_token IS NOT NULL THEN jsonb_build_array(e.partner_token) ELSE '[]'::jsonb END AS facts,
        CASE WHEN e.meter_stop_wh >= coalesce(e.meter_start_wh, 0) THEN e.meter_stop_wh - coalesce(e.meter_start_wh, 0) END AS by_stop,
        CASE WHEN r.value_wh >= coalesce(e.meter_start_wh, 0) THEN r.value_wh - coalesce(e.meter_start_wh, 0) END AS by_register,
        CASE WHEN i.total >= 0 THEN i.total END AS by_interval
    FROM ended e
    LEFT JOIN register r USING (session_id)
    LEFT JOIN interval_sum i USING (session_id)
    LEFT JOIN parked p USING (session_id)
), derived AS (
    SELECT session_id, forced, finalized_digest, facts, previous_energy_wh, parked_until,
        coalesce(by_stop, by_register, by_interval) AS energy_wh,
        CASE WHEN by_stop IS NOT NULL THEN 'StopTransaction'
             WHEN by_register IS NOT NULL THEN 'MeterValues.Register'
             WHEN by_interval IS NOT NULL THEN 'MeterValues.Interval'
             ELSE 'Missing' END AS energy_source
    FROM rungs
), changes AS (
    SELECT d.*, jsonb_build_array(energy_wh, energy_source) || facts AS digest,
        forced OR (jsonb_build_array(energy_wh, energy_source) || facts) IS DISTINCT FROM finalized_digest AS refinalized
    FROM derived d
)
UPDATE sessions.sessions s SET
    status = 'Finalized',
    energy_wh = c.energy_wh,
    energy_source = c.energy_source,
    is_estimated = c.energy_source = 'Missing',
    revision = s.revision + 1,
    finalized_at = now(),
    finalized_digest = c.digest
FROM changes c
WHERE s.session_id = c.session_id AND c.refinalized
RETURNING s.*, c.finalized_digest IS NULL AS first_finalization, c.previous_energy_wh, c.parked_until
"""


async def derive_sessions(
    conn: asyncpg.Connection, session_ids: Sequence[UUID], *, forced: Sequence[UUID] = (),
) -> list[asyncpg.Record]:
    """Recompute the sessions' finalization from their facts; returns the rows this call
    (re-)finalized, each with `first_finalization` and `previous_energy_wh`."""
    if not session_ids:
        return []
    return await conn.fetch(_DERIVE, list(session_ids), list(forced))


async def session_for_update(conn: asyncpg.Connection, session_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM sessions.sessions WHERE session_id = $1 FOR UPDATE", session_id)


async def close_by_rules(conn: asyncpg.Connection, charge_point_ids: Sequence[str]) -> list[asyncpg.Record]:
    """Close the chargers' sessions that can no longer end on their own (no end, not closed): a boot
    of the charger was received after the session's first event (ChargerRebooted: the gateway's
    clock stamps the boot, the charger's the session, so only receive order compares them), or its
    connector started a later transaction (NextTransaction, by the charger's (ts, receive order)).
    Both only ever become true as events come in, so the outcome is the same in any order.
    Returns (session_id, rule)."""
    return await conn.fetch(
        """
        WITH open_sessions AS (
            SELECT s.session_id,
                CASE WHEN c.last_boot_order > s.first_event_order
                     THEN 'ChargerRebooted'
                     -- sort_at is started_at here: its bound lets the charger's index skip its history
                     WHEN EXISTS (SELECT 1 FROM sessions.sessions n
                                  WHERE n.charge_point_id = s.charge_point_id AND n.sort_at >= s.last_event_at
                                    AND n.connector_id = s.connector_id
                                    AND n.session_id <> s.session_id AND n.started_at IS NOT NULL
                                    AND (n.started_at, n.start_order) > (s.last_event_at, s.last_event_order))
                     THEN 'NextTransaction' END AS rule
            FROM sessions.sessions s JOIN sessions.chargers c USING (charge_point_id)
            WHERE s.charge_point_id = ANY($1::text[]) AND s.ended_at IS NULL AND s.closed_at IS NULL
              AND s.first_event_order IS NOT NULL
        )
        UPDATE sessions.sessions s SET closed_at = now(), closed_rule = o.rule FROM open_sessions o
        WHERE s.session_id = o.session_id AND o.rule IS NOT NULL
        RETURNING s.session_id, o.rule
        """,
        list(charge_point_ids),
    )


async def close_stale(conn: asyncpg.Connection, *, silent_since: datetime, limit: int = 500) -> list[asyncpg.Record]:
    """Close sessions that have received no event since `silent_since` by our clock (Stale: the
    charger's own may be days off), a batch at a time."""
    return await conn.fetch(
        """
        UPDATE sessions.sessions s SET closed_at = now(), closed_rule = 'Stale'
        WHERE s.session_id IN (SELECT session_id FROM sessions.sessions
                               WHERE ended_at IS NULL AND closed_at IS NULL AND last_received_at < $1
                               ORDER BY last_received_at LIMIT $2 FOR UPDATE SKIP LOCKED)
        RETURNING s.session_id, s.closed_rule AS rule
        """,
        silent_since, limit,
    )


async def close_session(conn: asyncpg.Connection, session_id: UUID) -> None:
    """An operator finalizes a session whose end never came: finalize from what is known."""
    await conn.execute("UPDATE sessions.sessions SET closed_at = now() WHERE session_id = $1 AND closed_at IS NULL", session_id)


# --- progress of going sessions -------------------------------------------------------------------

async def sessions_due_progress(conn: asyncpg.Connection, session_ids: Sequence[UUID], *, every_seconds: float) -> list[asyncpg.Record]:
    """Of these sessions, those of partners' tokens going (started, neither ended nor closed) whose progress was never
    announced or not for `every_seconds`: counted as announced now, each with its energy so far
    (`so_far_wh`: the newest Register reading less the start's, else the Interval readings' sum, else 0)
    and what its connector is (`standard`, `format`, `power_type`, when the operator said)."""
    return await conn.fetch(
        """
        WITH due AS (
            UPDATE sessions.sessions s SET progress_sequence = s.progress_sequence + 1, progress_at = now()
            WHERE s.session_id = ANY($1::uuid[]) AND s.partner_token IS NOT NULL
              AND s.started_at IS NOT NULL AND s.ended_at IS NULL AND s.closed_at IS NULL
              AND (s.progress_at IS NULL OR s.progress_at <= now() - make_interval(secs => $2))
            RETURNING s.*
        )
        SELECT d.*, greatest(coalesce(
            (SELECT r.value_wh FROM sessions.meter_samples r WHERE r.session_id = d.session_id AND r.measurand = 'Register'
             ORDER BY r.ts DESC, r.receive_order DESC, r.value_wh DESC LIMIT 1) - coalesce(d.meter_start_wh, 0),
            (SELECT sum(i.value_wh) FROM sessions.meter_samples i WHERE i.session_id = d.session_id AND i.measurand = 'Interval'),
            0), 0) AS so_far_wh,
            c.standard, c.format, c.power_type
        FROM due d LEFT JOIN sessions.connector_specs c
            ON c.charge_point_id = d.charge_point_id AND c.connector_id = coalesce(d.connector_id, d.connector_hint)
        ORDER BY d.session_id
        """,
        list(session_ids), every_seconds,
    )


# --- from billing ---------------------------------------------------------------------------------

async def record_prices(conn: asyncpg.Connection, prices: Sequence[SessionPriced]) -> int:
    """Keep the price of the highest finalization revision billing priced (one message per
    session); returns how many sessions changed."""
    if not prices:
        return 0
    result = await conn.execute(
        """
        UPDATE sessions.sessions s SET tariff_id = p.tariff_id, cost_amount = p.amount, cost_currency = p.currency,
            priced_at = p.priced_at, priced_revision = p.revision, priced_energy_wh = p.energy_wh, cost_breakdown = p.breakdown::jsonb
        FROM unnest($1::uuid[], $2::uuid[], $3::numeric[], $4::text[], $5::timestamptz[], $6::int[], $7::numeric[], $8::text[])
            AS p(session_id, tariff_id, amount, currency, priced_at, revision, energy_wh, breakdown)
        WHERE s.session_id = p.session_id AND (s.priced_revision IS NULL OR s.priced_revision < p.revision)
        """,
        [p.sessionId for p in prices], [p.tariffId for p in prices], [p.costAmount for p in prices],
        [p.costCurrency for p in prices], [p.pricedAt for p in prices], [p.revision for p in prices],
        # as JSON text: a list in a jsonb[] argument would read as a second array dimension
        [p.energyWh for p in prices], [jsonutil.dumps(p.costBreakdown).decode() if p.costBreakdown is not None else None for p in prices],
    )
    return rows_affected(result)


async def record_settlement_statuses(conn: asyncpg.Connection, statuses: Sequence[SettlementStatusChanged]) -> int:
    """The settlement status of each session by `shared.domain.settlement_order` (one message per session), and
    once money has moved the figures billing billed; returns how many sessions changed."""
    if not statuses:
        return 0
    result = await conn.execute(
        """
        UPDATE sessions.sessions s SET settlement_status = u.status, settlement_at = u.at,
            billed_energy_wh = CASE WHEN u.status = ANY($5::text[]) THEN coalesce(u.energy_wh, s.priced_energy_wh, s.energy_wh)
                                    ELSE s.billed_energy_wh END,
            billed_amount = CASE WHEN u.status = ANY($5::text[]) THEN coalesce(u.amount, s.cost_amount) ELSE s.billed_amount END,
            billed_currency = CASE WHEN u.status = ANY($5::text[]) THEN coalesce(u.currency, s.cost_currency) ELSE s.billed_currency END
        FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $6::numeric[], $7::numeric[], $8::text[])
            AS u(session_id, status, at, energy_wh, amount, currency)
        WHERE s.session_id = u.session_id AND (s.settlement_at IS NULL OR u.at > s.settlement_at OR (u.at = s.settlement_at
              AND array_position($4::text[], u.status) > coalesce(array_position($4::text[], s.settlement_status), 0)))
        """,
        [u.sessionId for u in statuses], [u.status for u in statuses], [u.at for u in statuses], list(SETTLEMENT_PROGRESS),
        list(MONEY_HAS_MOVED), [u.energyWh for u in statuses], [u.amount for u in statuses], [u.currency for u in statuses],
    )
    return rows_affected(result)


# --- charging periods -----------------------------------------------------------------------------

async def register_readings(conn: asyncpg.Connection, session_ids: Sequence[UUID]) -> list[asyncpg.Record]:
    """The sessions' Register samples (session_id, ts, value_wh), oldest first per session."""
    return await conn.fetch(
        "SELECT session_id, ts, value_wh FROM sessions.meter_samples WHERE session_id = ANY($1::uuid[]) AND measurand = 'Register' "
        "ORDER BY session_id, ts, receive_order",
        list(session_ids),
    )


async def connector_statuses(
    conn: asyncpg.Connection, spans: Sequence[tuple[UUID, str, int, datetime, datetime]],
) -> list[asyncpg.Record]:
    """For each (session_id, chargePointId, connectorId, start, end): the connector's status at the
    start and every status after it before the end (session_id, ts, status), oldest first."""
    if not spans:
        return []
    return await conn.fetch(
        """
        SELECT w.session_id, l.ts, l.status
        FROM unnest($1::uuid[], $2::text[], $3::int[], $4::timestamptz[], $5::timestamptz[]) AS w(session_id, cp, connector, s, e)
        JOIN LATERAL (
            (SELECT ts, receive_order, status FROM sessions.connector_status_log
             WHERE charge_point_id = w.cp AND connector_id = w.connector AND ts <= w.s ORDER BY ts DESC, receive_order DESC LIMIT 1)
            UNION ALL
            (SELECT ts, receive_order, status FROM sessions.connector_status_log
             WHERE charge_point_id = w.cp AND connector_id = w.connector AND ts > w.s AND ts < w.e)
        ) l ON true
        ORDER BY w.session_id, l.ts, l.receive_order
        """,
        *map(list, zip(*spans)),
    )


# --- reads ---------------------------------------------------------------------------------------

async def session(conn: asyncpg.Connection, session_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM sessions.sessions WHERE session_id = $1", session_id)


def _sessions_query(
    *, charge_point_id: str | None = None, site_id: UUID | None = None, status: str | None = None,
    id_tag: str | None = None, started_from: datetime | None = None, started_to: datetime | None = None,
    before: tuple[datetime, UUID] | None = None, limit: int | None = None,
) -> tuple[str, list[Any]]:
    """The network's sessions, newest first by startedAt (the first time seen while the start is
    unknown), filtered; `limit + 1` rows when `limit` (a page), every row without (an export)."""
    filters = Filters()
    filters.add_given("s.charge_point_id = {}", charge_point_id)
    filters.add_given("s.charge_point_id IN (SELECT charge_point_id FROM sessions.chargers WHERE site_id = {})", site_id)
    filters.add_given("s.status = {}", status)
    filters.add_given("coalesce(s.id_tag, s.end_id_tag) = {}", id_tag)
    filters.add_given("s.started_at >= {}", started_from)
    filters.add_given("s.started_at < {}", started_to)
    if before is not None:
        filters.add("(s.sort_at, s.session_id) < ({}, {}::uuid)", *before)
    page = f" LIMIT {filters.arg(limit + 1)}" if limit is not None else ""
    return (f"SELECT s.* FROM sessions.sessions s WHERE {filters.where} "
            f"ORDER BY s.sort_at DESC, s.session_id DESC{page}"), filters.args


async def sessions_page(
    conn: asyncpg.Connection, *, before: tuple[datetime, UUID] | None, limit: int, **filters: Any,
) -> list[asyncpg.Record]:
    """A page of sessions, newest first, after the cursor's (sort_at, session_id); `filters` as
    `_sessions_query` takes them."""
    sql, args = _sessions_query(**filters, before=before, limit=limit)
    return await conn.fetch(sql, *args)


def every_session(conn: asyncpg.Connection, **filters: Any) -> AsyncIterable[asyncpg.Record]:
    """Every matching session, newest first, for an export; iterate inside a transaction."""
    return every_row(conn, *_sessions_query(**filters))
