"""Sessions that close themselves (issue: "sessions that close themselves"): still Active when
their charger boots again, when their connector starts another transaction, or after a silence of
CPMS_SESSION_STALE_AFTER_SECONDS, they are finalized by the ladder with `closedBy` naming the rule.
A TransactionEnded that arrives afterwards wins. A boot is judged by receive order (CONTRACT
section 1, "Two clocks"), the next transaction by the charger's (ts, receive order), so the outcome
is the same whatever order the events are delivered in behind ingest."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.ingest import gateway_events as ev
from tests.sessions.flows import applied, deliver, finalized, received, send, session_when
from tests.support import eventually, unique_id

T0, T10, T20, T30, T40 = (f"2026-11-25T10:{m:02d}:00Z" for m in (0, 10, 20, 30, 40))


def reboot(cp: str) -> list[dict]:
    return [ev.started(cp, 1, meter_start=1000, ts=T0), ev.sample(cp, 1, "1600", T10), ev.booted(cp, ts=T20)]


def next_transaction(cp: str) -> list[dict]:
    return [ev.started(cp, 1, meter_start=1000, ts=T0), ev.sample(cp, 1, "1800", T10), ev.started(cp, 2, meter_start=1800, ts=T30)]


@pytest.mark.parametrize("order", ["as sent", "reversed"])
@pytest.mark.parametrize(("events", "rule", "energy"), [(reboot, "ChargerRebooted", 600), (next_transaction, "NextTransaction", 800)],
                         ids=["reboot", "next-transaction"])
async def test_a_session_its_charger_cannot_end_closes_itself_and_a_later_end_wins(api, settings, pg, events, rule, energy, order):
    cp = unique_id("SELF")
    sent = received(*events(cp))  # ingest receives them in the charger's order
    await deliver(settings, pg, sent if order == "as sent" else sent[::-1])  # as the broker might hand them on
    session = await session_when(api, cp, 1, finalized)
    assert (session["closedBy"], session["energyWh"], session["endedAt"]) == (rule, energy, None)
    _, metrics = await api.anonymous("GET", "/metrics")
    assert f'cpms_sessions_closed_by_rule_total{{rule="{rule}"}}' in metrics

    await send(api, ev.ended(cp, 1, meter_stop=2000, ts=T40 if rule == "ChargerRebooted" else T20))
    ended = await session_when(api, cp, 1, lambda s: s["closedBy"] == "Charger")
    assert (ended["energyWh"], ended["energySource"]) == (1000, "StopTransaction")


async def test_a_boot_before_the_session_closes_nothing(api, pg):
    cp = unique_id("SELF")
    await applied(pg, await send(api, ev.booted(cp, ts=T0), ev.started(cp, 1, ts=T10), ev.sample(cp, 1, "500", T20)))
    session = await session_when(api, cp, 1)
    assert (session["status"], session["closedBy"]) == ("Active", None)


async def test_a_silent_session_closes_itself_as_stale(make_api, connect_db):
    api = await make_api(session_stale_after_seconds=2)
    pg = await connect_db(api)
    cp = unique_id("STALE")
    a_minute_ago = (datetime.now(UTC) - timedelta(minutes=1)).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    await applied(pg, await send(api, ev.started(cp, 1, meter_start=100, ts=a_minute_ago), ev.sample(cp, 1, "400", a_minute_ago)))
    session = await eventually(lambda: _finalized(api, cp), timeout=20)
    assert (session["closedBy"], session["energyWh"]) == ("Stale", 300)


async def _finalized(api, cp: str):
    status, body = await api.admin("GET", f"/v1/chargers/{cp}/sessions")
    items = body["items"] if status == 200 else []
    return items[0] if items and items[0]["status"] == "Finalized" else None
