"""Postgres stopped and started while chargers are sending: ingest keeps accepting (it needs only
the broker), the consumers retry their batches until the database is back, and every accepted
event is applied exactly once: nothing lost, nothing doubled."""
from __future__ import annotations

import pytest

from shared import db
from tests.faults import outages
from tests.faults.load import Load, verify_exactly_once
from tests.support import eventually

pytestmark = pytest.mark.faults


async def test_postgres_restarted_mid_load_loses_and_doubles_nothing(api, database_url):
    load = Load(chargers=40)
    await load.prepare(api)
    async with outages.under_load(api, load):
        try:
            await outages.postgres("stop")
            down = await eventually(lambda: outages.readiness(api, 503), timeout=30)
            assert "database" in down["failing"]
            accepted_at_stop = len(load.outcome.accepted)
            # events keep being accepted while the consumers cannot apply them
            await eventually(lambda: outages.at_least(len(load.outcome.accepted), accepted_at_stop + 40))
        finally:
            await outages.postgres("start")
            await outages.database_answers(database_url)

    pg = await db.connect(database_url)  # the connection of the `pg` fixture died with the server
    try:
        figures = await verify_exactly_once(api, pg, load)
    finally:
        await pg.close()
    assert figures["statuses"] == {202: load.event_count}  # the gateway never saw the outage
    print(f"database restart: {figures}")

