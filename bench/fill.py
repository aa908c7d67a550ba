"""Filling the tables for a growth step on the server (INSERT ... SELECT over generate_series),
not through the API: a history of finished, priced and settled sessions for the chargers the next
measurement plays, with everything the pipeline keeps for each session of 10 events (boot,
status, start, 5 samples, end, status): the archived events, the sessions consumer's inbox ids,
the meter samples, the connector status log, billing's price, settlement and inbox rows. A
million sessions (10 million archived events) then take minutes instead of the hours the API
would, and each measured charger arrives with a history of its own, as real chargers do."""
from __future__ import annotations

import time
from datetime import datetime
from uuid import UUID

import asyncpg

SAMPLES = 5  # per session: with boot, status, start, end and status, 10 events


# receive orders as ingest gives them: microseconds of receipt x 1024 (+ the event's index)
_HISTORY = """
CREATE TEMP TABLE fill AS
SELECT *, (extract(epoch FROM t0) * 1000000)::bigint * 1024 AS receive_order FROM (
    SELECT c.cp, k, gen_random_uuid() AS session_id, 'fill-' || c.cp || '-' || k AS event_key,
           $3::timestamptz - make_interval(mins => ($2 - k + 1) * 30) AS t0,
           1000000000 + k AS tx, 1000 + (k * 104729) % 60000 AS energy
    FROM unnest($1::text[]) AS c(cp), generate_series(1, $2) AS k
) planned
"""

_ARCHIVE = f"""
INSERT INTO ingest.events (event_id, type, charge_point_id, ts, received_at, body, receive_order)
SELECT f.event_key || '-' || e.n, e.type, f.cp, f.t0 + e.at, f.t0 + e.at + interval '50 ms',
       jsonb_build_object('type', e.type, 'chargePointId', f.cp, 'ts', f.t0 + e.at, 'eventId', f.event_key || '-' || e.n,
                          'receivedAt', f.t0 + e.at + interval '50 ms', 'effectiveTs', f.t0 + e.at,
                          'receiveOrder', f.receive_order + e.n) || e.fields,
       f.receive_order + e.n
FROM fill f, LATERAL (VALUES
    (0, 'ChargerBooted', interval '0 s', jsonb_build_object('vendor', 'Bench', 'model', 'B1', 'firmwareVersion', '1.0', 'ocppVersion', '1.6')),
    (1, 'ConnectorStatusChanged', interval '100 ms', jsonb_build_object('connectorId', 1, 'status', 'Preparing', 'errorCode', 'NoError')),
    (2, 'TransactionStarted', interval '1 s', jsonb_build_object('connectorId', 1, 'transactionId', f.tx, 'idTag', 'BENCH')),
    {", ".join(f"({2 + j}, 'MeterSample', interval '{1 + j} s', jsonb_build_object('transactionId', f.tx, 'connectorId', 1, 'samples', jsonb_build_array(jsonb_build_object('value', (f.energy * {j} / {SAMPLES + 1})::text, 'context', 'Sample.Periodic'))))" for j in range(1, SAMPLES + 1))},
    ({SAMPLES + 3}, 'TransactionEnded', interval '{SAMPLES + 2} s', jsonb_build_object('transactionId', f.tx, 'meterStopWh', f.energy, 'reason', 'Local', 'idTag', 'BENCH')),
    ({SAMPLES + 4}, 'ConnectorStatusChanged', interval '{SAMPLES + 2}.1 s', jsonb_build_object('connectorId', 1, 'status', 'Available', 'errorCode', 'NoError'))
) AS e(n, type, at, fields)
"""

_SESSIONS = f"""
INSERT INTO sessions.sessions (session_id, charge_point_id, transaction_id, first_seen_at, connector_id, id_tag, meter_start_wh,
    started_at, start_event_id, start_order, ended_at, meter_stop_wh, reason, end_id_tag, end_event_id, end_order, status,
    energy_wh, energy_source, finalized_at, revision, finalized_digest, tariff_id, cost_amount, cost_currency, priced_at,
    priced_revision, priced_energy_wh, billed_energy_wh, billed_amount, billed_currency, settlement_status, settlement_at,
    starts, last_event_at, last_event_order, first_event_order, last_received_at, "authorization")
SELECT session_id, cp, tx, t0 + interval '1 s', 1, 'BENCH', 0,
    t0 + interval '1 s', event_key || '-2', receive_order + 2, t0 + interval '{SAMPLES + 2} s', energy, 'Local', 'BENCH',
    event_key || '-{SAMPLES + 3}', receive_order + {SAMPLES + 3}, 'Finalized',
    energy, 'StopTransaction', t0 + interval '{SAMPLES + 3} s', 1,
    jsonb_build_array(energy, 'StopTransaction', t0 + interval '1 s', t0 + interval '{SAMPLES + 2} s', 1, t0 + interval '{SAMPLES + 2}.1 s'),
    $1::uuid, round(energy * 0.30 / 1000, 2), 'USD', t0 + interval '{SAMPLES + 4} s',
    1, energy, energy, round(energy * 0.30 / 1000, 2), 'USD', 'Confirmed', t0 + interval '{SAMPLES + 60} s',
    '{{}}'::jsonb, t0 + interval '{SAMPLES + 2}.1 s', receive_order + {SAMPLES + 4}, receive_order + 2,
    t0 + interval '{SAMPLES + 2}.05 s', 'Accepted'
FROM fill
"""

_SAMPLES = f"""
INSERT INTO sessions.meter_samples (session_id, event_id, position, ts, measurand, value_wh, receive_order)
SELECT f.session_id, f.event_key || '-' || (2 + j), 0, f.t0 + make_interval(secs => 1 + j), 'Register',
       f.energy * j / {SAMPLES + 1}, f.receive_order + 2 + j
FROM fill f, generate_series(1, {SAMPLES}) AS j
"""

_STATUS_LOG = f"""
INSERT INTO sessions.connector_status_log (charge_point_id, connector_id, ts, receive_order, event_id, status)
SELECT cp, 1, t0 + interval '100 ms', receive_order + 1, event_key || '-1', 'Preparing' FROM fill
UNION ALL
SELECT cp, 1, t0 + interval '{SAMPLES + 2}.1 s', receive_order + {SAMPLES + 4}, event_key || '-{SAMPLES + 4}', 'Available' FROM fill
"""

# the sessions consumer's inbox holds every charger event id, and billing's two messages' ids
_SESSIONS_INBOX = f"""
INSERT INTO sessions.inbox (message_id, received_at)
SELECT f.event_key || '-' || n, f.t0 FROM fill f, generate_series(0, {SAMPLES + 4}) AS n
UNION ALL
SELECT f.event_key || '-' || m, f.t0 FROM fill f, unnest(ARRAY['priced', 'confirmed']) AS m
"""

_PRICES = f"""
INSERT INTO billing.session_prices (session_id, charge_point_id, revision, energy_wh, tariff_id, cost_amount, currency, priced_at,
    updated_at, latest_energy_wh)
SELECT session_id, cp, 1, energy, $1::uuid, round(energy * 0.30 / 1000, 2), 'USD', t0 + interval '{SAMPLES + 4} s',
       t0 + interval '{SAMPLES + 4} s', energy
FROM fill
"""

_SETTLEMENTS = f"""
INSERT INTO billing.settlements (settlement_id, session_id, charge_point_id, site_id, amount, currency, wallet, status, chain,
    tx_hash, created_at, updated_at, energy_wh)
SELECT gen_random_uuid(), session_id, cp, $1::uuid, round(energy * 0.30 / 1000, 2), 'USD', $2, 'Confirmed', 'bench',
       md5(event_key), t0 + interval '{SAMPLES + 4} s', t0 + interval '{SAMPLES + 60} s', energy
FROM fill
"""

_BILLING_INBOX = "INSERT INTO billing.inbox (message_id, received_at) SELECT event_key || '-finalized', t0 FROM fill"


async def fill_history(database_url: str, charge_point_ids: list[str], sessions_each: int, *, before: datetime,
                       site_id: UUID, tariff_id: UUID, wallet: str) -> dict:
    """`sessions_each` finished sessions for each charger, ending before `before`; returns the
    seconds each table took."""
    conn = await asyncpg.connect(database_url)
    took: dict[str, float] = {}
    try:
        started = time.perf_counter()
        await conn.execute(_HISTORY, charge_point_ids, sessions_each, before)
        took["plan"] = time.perf_counter() - started
        for name, sql, args in (
            ("archive", _ARCHIVE, ()), ("sessions", _SESSIONS, (tariff_id,)), ("samples", _SAMPLES, ()),
            ("statusLog", _STATUS_LOG, ()), ("sessionsInbox", _SESSIONS_INBOX, ()), ("prices", _PRICES, (tariff_id,)),
            ("settlements", _SETTLEMENTS, (site_id, wallet)), ("billingInbox", _BILLING_INBOX, ()),
        ):
            started = time.perf_counter()
            await conn.execute(sql, *args)
            took[name] = round(time.perf_counter() - started, 1)
        await conn.execute("DROP TABLE fill")
        started = time.perf_counter()
        await conn.execute("VACUUM (ANALYZE)")  # what autovacuum does after such a load
        took["vacuumAnalyze"] = round(time.perf_counter() - started, 1)
    finally:
        await conn.close()
    return took
