"""Dead letters for operators: `cpms dlq list`, `show`, `replay [--id]`, `purge --yes`, run as an
operator runs them. A replayed message goes through its consumer's inbox: one that was applied
after all changes nothing, one that never was is applied once."""
from __future__ import annotations

import asyncio
import json
import os
import sys

from services.ingest.intake import ReceiveClock, accept_events
from shared.broker import Broker
from shared.topology import SESSIONS_CHARGER_EVENTS
from tests.ingest import gateway_events as ev
from tests.sessions.flows import applied, finalized, send, session_when
from tests.support import eventually, unique_id

QUEUE = SESSIONS_CHARGER_EVENTS.key
T0, T1, T2, T3 = (f"2026-11-25T10:0{m}:00Z" for m in range(4))


async def cpms(settings, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", *args,
        env={**os.environ, "CPMS_AMQP_URL": settings.amqp_url, "CPMS_AMQP_PREFIX": settings.amqp_prefix,
             "CPMS_DATABASE_URL": settings.database_url, "CPMS_LOG_LEVEL": "WARNING"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode, out.decode(), err.decode()


async def depth(settings) -> int:
    code, out, err = await cpms(settings, "dlq", "list")
    assert code == 0, err
    return int(dict(line.split("\t") for line in out.splitlines())[f"{QUEUE}.dlq"])


async def dead_letter(settings, *events: dict) -> list[str]:
    """Put events in the sessions queue's DLQ, as its consumer does with one it could not apply."""
    broker = Broker(settings.amqp_url, settings.amqp_prefix, publish_timeout=5)
    await broker.connect()
    try:
        accepted, _ = accept_events(list(events), ReceiveClock())
        for event in accepted:
            await broker.dead_letter(SESSIONS_CHARGER_EVENTS, json.dumps(event.body).encode(), message_id=event.event_id,
                                     headers={}, reason="PermanentError: the cause, since mended", routing_key=event.routing_key)
        return [event.event_id for event in accepted]
    finally:
        await broker.close()


async def test_dead_letters_are_listed_shown_and_replayed_through_the_inbox(api, pg, settings):
    cp = unique_id("DLQ")
    interval = ev.sample(cp, 1, "700", T1, measurand="Energy.Active.Import.Interval")
    await applied(pg, await send(api, ev.started(cp, 1, ts=T0), interval, ev.ended(cp, 1, ts=T3)))
    assert (await session_when(api, cp, 1, finalized))["energyWh"] == 700
    before = await depth(settings)

    # One that was applied after all (the same event), one that never was.
    late = ev.sample(cp, 1, "300", T2, measurand="Energy.Active.Import.Interval")
    ids = await dead_letter(settings, interval, late)
    assert await depth(settings) == before + 2

    code, out, err = await cpms(settings, "dlq", "show", QUEUE, "--limit", "500")
    assert code == 0, err
    shown = {letter["messageId"]: letter for letter in map(json.loads, out.splitlines())}
    assert set(ids) <= set(shown)
    assert shown[ids[1]]["reason"] == "PermanentError: the cause, since mended" and '"300"' in shown[ids[1]]["body"]
    assert await depth(settings) == before + 2  # show leaves them where they are

    code, out, err = await cpms(settings, "dlq", "replay", QUEUE)
    assert code == 0, err
    assert f"{before + 2} message(s) replayed" in out and f"replayed {before + 2}/{before + 2}" in err
    assert await depth(settings) == 0
    session = await session_when(api, cp, 1, lambda s: s["energyWh"] == 1000)  # 700 + 300, never 1700
    assert session["energySource"] == "MeterValues.Interval"


async def test_one_dead_letter_is_replayed_by_id_and_purge_asks_first(api, settings):
    cp = unique_id("DLQ")
    first, second = await dead_letter(settings, ev.heartbeat(cp, ts=T0), ev.heartbeat(cp, ts=T1))
    code, out, err = await cpms(settings, "dlq", "replay", f"{QUEUE}.dlq", "--id", second)
    assert (code, out.strip()) == (0, f"1 message(s) replayed to {QUEUE}"), err
    code, out, _ = await cpms(settings, "dlq", "show", QUEUE, "--limit", "500")
    assert first in out and second not in out

    remaining = await depth(settings)
    code, _, err = await cpms(settings, "dlq", "purge", QUEUE)
    assert code == 2 and "--yes" in err
    assert await depth(settings) == remaining
    code, out, err = await cpms(settings, "dlq", "purge", QUEUE, "--yes")
    assert (code, out.strip()) == (0, f"{remaining} message(s) dropped from {QUEUE}.dlq"), err
    assert await depth(settings) == 0
    code, _, err = await cpms(settings, "dlq", "show", "no.such-queue")
    assert code == 2 and "no queue 'no.such-queue'" in err
    await eventually(lambda: _heard(api, cp))


async def _heard(api, cp: str) -> bool:
    status, charger = await api.admin("GET", f"/v1/chargers/{cp}")
    return status == 200 and charger["lastHeartbeatAt"] == T1  # the replayed heartbeat was applied
