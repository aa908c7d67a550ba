"""Retention: with CPMS_SAMPLE_RETENTION_DAYS and CPMS_ARCHIVE_RETENTION_DAYS set, a periodic,
batched prune deletes old meter samples and archived events, and never what a session whose money
is not settled still depends on. Time is travelled by moving the stored times back."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from tests.chargers.test_reference_gateway import priced_site, register, settlement_of
from tests.ingest import gateway_events as ev
from tests.sessions.flows import applied, finalized, send, session_when
from tests.support import eventually, unique_id

INTERVAL = "Energy.Active.Import.Interval"


def stamp(seconds_from_now: float = 0) -> str:
    moment = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=seconds_from_now)
    return moment.isoformat().replace("+00:00", "Z")


async def charge(api, pg, cp: str, *, ago_seconds: float = 0) -> dict:
    """A session whose energy is its two Interval samples (no meter stop): 700 Wh."""
    t = -ago_seconds
    await applied(pg, await send(api, ev.started(cp, 1, ts=stamp(t + 1)), ev.sample(cp, 1, "400", stamp(t + 2), measurand=INTERVAL),
                                 ev.sample(cp, 1, "300", stamp(t + 3), measurand=INTERVAL), ev.ended(cp, 1, ts=stamp(t + 4))))
    return await session_when(api, cp, 1, lambda s: s["status"] == "Finalized" and s["energyWh"] == 700)


async def samples_of(pg, session: dict) -> int:
    return await pg.fetchval("SELECT count(*) FROM sessions.meter_samples WHERE session_id = $1", uuid.UUID(session["sessionId"]))


async def age(pg, session: dict, days: float) -> None:
    await pg.execute("UPDATE sessions.sessions SET finalized_at = now() - make_interval(days => $2) WHERE session_id = $1",
                     uuid.UUID(session["sessionId"]), days)


async def test_old_samples_go_once_the_money_is_settled_and_the_session_stays_as_billed(make_api, connect_db):
    api = await make_api(sample_retention_days=1, prune_interval_seconds=0.3)
    pg = await connect_db(api)
    site, _ = await priced_site(api, "0.50")
    settled, pending, unpriced = unique_id("SETTLED"), unique_id("PENDING"), unique_id("UNPRICED")
    for cp in (settled, pending):
        await register(api, cp, site["siteId"])
    await register(api, unpriced)
    sessions = {cp: await charge(api, pg, cp) for cp in (settled, pending, unpriced)}
    for cp in (settled, pending):
        await eventually(lambda cp=cp: settlement_of(api, sessions[cp]["sessionId"]))
    paid = await settlement_of(api, sessions[settled]["sessionId"])
    await api.admin("POST", f"/v1/settlements/{paid['settlementId']}/submitted", {"chain": "XRPL", "txHash": "A" * 64})
    status, _ = await api.admin("POST", f"/v1/settlements/{paid['settlementId']}/confirmed")
    assert status == 200
    for session in sessions.values():
        await age(pg, session, 3)  # finalized three days ago

    async def pruned() -> bool:
        return await samples_of(pg, sessions[settled]) == 0 and await samples_of(pg, sessions[unpriced]) == 0

    await eventually(pruned, timeout=20)
    assert await samples_of(pg, sessions[pending]) == 2  # Pending: its energy may still be derived and billed
    _, metrics = await api.anonymous("GET", "/metrics")
    assert 'cpms_retention_pruned_rows_total{table="meter_samples"} 4.0' in metrics

    # A late sample: the settled session stays as billed, the pending one follows it.
    await applied(pg, await send(api, ev.sample(settled, 1, "200", stamp(3), measurand=INTERVAL),
                                 ev.sample(pending, 1, "200", stamp(3), measurand=INTERVAL)))
    await session_when(api, pending, 1, lambda s: s["energyWh"] == 900)
    after = await session_when(api, settled, 1, finalized)
    assert (after["energyWh"], after["costAmount"], after["energySource"]) == (700, "0.35", "MeterValues.Interval")


async def test_the_archive_is_pruned_only_behind_what_unsettled_sessions_need(make_api, connect_db):
    api = await make_api(archive_retention_days=1, prune_interval_seconds=0.3)
    pg = await connect_db(api)
    cp = unique_id("ARCHIVE")
    ten_days = 10 * 86400
    await applied(pg, await send(api, ev.started(cp, 1, ts=stamp(-ten_days)), ev.sample(cp, 1, "400", stamp(-ten_days + 60),
                                                                                        measurand=INTERVAL)))
    await eventually(lambda: _archived(pg, cp, 2))
    # Its session is still going (it started ten days ago, by its charger's clock): the horizon
    # ingest hears goes back past its start. Only then are its events made five days old: a horizon
    # announced before the session existed never met events that old in a real archive.
    await eventually(lambda: _horizon_before(pg, datetime.now(UTC) - timedelta(days=10)), timeout=20)
    await pg.execute("UPDATE ingest.events SET received_at = now() - interval '5 days' WHERE charge_point_id = $1", cp)

    # Every event stays, round after round.
    for _ in range(2):
        since = datetime.now(UTC)
        horizon = await eventually(lambda: _horizon_after(pg, since), timeout=20)
        assert horizon < datetime.now(UTC) - timedelta(days=10)
    assert await _archived(pg, cp, 2)

    # Once it is over and nothing is owed on it, what was received five days ago goes.
    await applied(pg, await send(api, ev.ended(cp, 1, ts=stamp(-ten_days + 120))))
    session = await session_when(api, cp, 1, finalized)
    await age(pg, session, 2)  # finalized two days ago, never priced (the charger has no site)
    await eventually(lambda: _archived(pg, cp, 1), timeout=20)  # the end, received just now, stays
    _, metrics = await api.anonymous("GET", "/metrics")
    assert 'cpms_retention_pruned_rows_total{table="events"} 2.0' in metrics


async def _archived(pg, cp: str, count: int) -> bool:
    return await pg.fetchval("SELECT count(*) FROM ingest.events WHERE charge_point_id = $1", cp) == count


async def _horizon_before(pg, moment: datetime) -> bool:
    keep_from = await pg.fetchval("SELECT keep_from FROM ingest.retention_horizon")
    return keep_from is not None and keep_from < moment


async def _horizon_after(pg, moment: datetime) -> datetime | None:
    row = await pg.fetchrow("SELECT keep_from, announced_at FROM ingest.retention_horizon")
    return row["keep_from"] if row is not None and row["announced_at"] > moment else None
