"""Whether each charger is connected, as `charger.connection-changed` tells it (roaming shows the
EVSEs of a charger that is not as UNKNOWN): by the rule of the fleet view's `online` (CONTRACT
section 8), announced once each time it turns. It turns when the charger is heard or our gateway
reports it gone (with the batch of events that says so), and when it has been silent for
CPMS_CHARGER_OFFLINE_AFTER_SECONDS (found by a periodic round), the only sign behind the
reference gateway, which reports no connections."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
from aiohttp import web

from services.sessions import store
from shared.app import SETTINGS, unit_of_work
from shared.domain import ChargerConnectionChanged
from shared.outbox import enqueue_domain_many
from shared.periodic import every, quarter_of

ROUND_SECONDS_MAX = 30.0
BATCH = 1000  # chargers announced in one transaction


async def announce(conn: asyncpg.Connection, offline_after_seconds: float, charge_point_ids: Sequence[str] | None = None) -> int:
    """Announce the chargers whose connection turned (among `charge_point_ids`, else any); returns how many."""
    online_since = datetime.now(UTC) - timedelta(seconds=offline_after_seconds)
    turned = await store.chargers.announce_connections(conn, online_since=online_since, offline_after_seconds=offline_after_seconds,
                                                       charge_point_ids=charge_point_ids,
                                                       limit=len(charge_point_ids) if charge_point_ids is not None else BATCH)
    await enqueue_domain_many(conn, store.SCHEMA, [
        ChargerConnectionChanged(chargePointId=r["charge_point_id"], online=r["online"], at=r["at"]) for r in turned])
    return len(turned)


async def _announce_silences(app: web.Application) -> None:
    """Every charger whose connection turned, a batch at a time (a whole region falling silent at
    once is announced in one round, not a batch a round)."""
    while True:
        async with unit_of_work(app, store.SCHEMA) as conn:
            announced = await announce(conn, app[SETTINGS].charger_offline_after_seconds)
        if announced < BATCH:
            return


def _round_seconds(app: web.Application) -> float:
    return quarter_of(app[SETTINGS].charger_offline_after_seconds, at_most=ROUND_SECONDS_MAX)


silence_watch = every("sessions:charger-silences", _round_seconds, _announce_silences)
