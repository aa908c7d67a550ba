"""What ingest promises when a dependency fails, and what it never leaks."""
from __future__ import annotations

import asyncio
import contextlib
import logging

from shared import db
from tests.ingest import gateway_events as ev
from tests.support import TcpProxy, eventually, unique_id


async def test_events_the_broker_does_not_confirm_are_spooled_and_published_when_it_is_back(make_api, settings, connect_db):
    proxy = TcpProxy.to(settings.amqp_url)
    await proxy.start()
    try:
        api = await make_api(services=["ingest"], publish_timeout_seconds=0.5, amqp_url=proxy.url)
        pg = await connect_db(api)
        cp = unique_id()
        assert (await api.gateway("POST", "/v1/gateway/events", ev.booted(cp)))[0] == 202
        proxy.freeze()  # the broker goes silent: no confirm will come
        status, body = await api.gateway("POST", "/v1/gateway/events", [ev.heartbeat(cp), ev.status(cp, 1, "Available")])
        assert status == 202, body  # a promise: the spool holds them
        status, single = await api.gateway("POST", "/v1/gateway/events", ev.heartbeat(cp, ts="2026-11-25T10:09:00Z"))
        assert status == 202, single
        spooled = await pg.fetch("SELECT message_id, body FROM ingest.spool ORDER BY id")
        assert [r["message_id"] for r in spooled] == [*body["eventIds"], single["eventId"]]
        assert [r["body"]["receiveOrder"] for r in spooled] == sorted(r["body"]["receiveOrder"] for r in spooled)
        _, metrics = await eventually(lambda: _metric_at_least(api, "cpms_ingest_spool_events", 3))
        status, ready = await api.anonymous("GET", "/readyz")
        assert status == 200 and ready["status"] in ("ok", "degraded")
        proxy.thaw()
        # the relay publishes the spool, same eventIds; the archive holds each event once
        await eventually(lambda: pg.fetchval("SELECT count(*) = 0 FROM ingest.spool"), timeout=30)
        archived = await eventually(lambda: _archived(pg, cp, 4), timeout=30)
        assert sorted(archived) == sorted([*body["eventIds"], single["eventId"], archived[0]])
        await eventually(lambda: _metric_at_least(api, "cpms_ingest_events_spooled_total", 3))
    finally:
        await proxy.close()


async def _archived(pg, cp: str, count: int) -> list[str] | None:
    ids = [r["event_id"] for r in await pg.fetch(
        "SELECT event_id FROM ingest.events WHERE charge_point_id = $1 ORDER BY receive_order", cp)]
    return ids if len(ids) == count else None


async def _metric_at_least(api, name: str, wanted: float):
    _, text = await api.anonymous("GET", "/metrics")
    for line in text.splitlines():
        if line.startswith(name + " ") and float(line.split()[1]) >= wanted:
            return True, text
    return None


async def test_503_only_when_neither_the_broker_nor_the_database_can_hold_the_events(make_api, settings):
    broker_proxy, db_proxy = TcpProxy.to(settings.amqp_url), TcpProxy.to(settings.database_url)
    await broker_proxy.start()
    await db_proxy.start()
    try:
        api = await make_api(services=["ingest"], publish_timeout_seconds=0.5, amqp_url=broker_proxy.url, database_url=db_proxy.url)
        cp = unique_id()
        assert (await api.gateway("POST", "/v1/gateway/events", ev.booted(cp)))[0] == 202
        await broker_proxy.close()
        await db_proxy.close()
        status, body = await api.gateway("POST", "/v1/gateway/events", ev.heartbeat(cp))
        assert status == 503, body
        assert body["status"] == 503 and api.last_response.headers["Retry-After"]
        status, ready = await api.anonymous("GET", "/readyz")
        assert status == 503 and {"broker", "database"} <= set(ready["failing"])
    finally:
        await broker_proxy.close()
        await db_proxy.close()


@contextlib.asynccontextmanager
async def _broker_lost(make_api, settings, services: list[str]):
    """An app of `services`, ready, then cut from its broker for good."""
    proxy = TcpProxy.to(settings.amqp_url)
    await proxy.start()
    try:
        api = await make_api(services=services, amqp_url=proxy.url)
        assert (await api.anonymous("GET", "/readyz"))[0] == 200
        await proxy.close()  # connection cut, and no way back in
        yield api
    finally:
        await proxy.close()


async def test_readiness_stays_up_degraded_while_the_spool_can_hold_events(make_api, settings):
    async with _broker_lost(make_api, settings, ["ingest"]) as api:
        status, body = await eventually(lambda: _degraded(api))
        assert status == 200 and "broker" in body["degraded"] and body["checks"]["broker"] == "failing"
        assert (await api.anonymous("GET", "/livez"))[0] == 200


async def test_readiness_names_the_broker_when_a_process_without_a_spool_loses_it(make_api, settings):
    async with _broker_lost(make_api, settings, ["sessions"]) as api:
        status, body = await eventually(lambda: _not_ready(api))
        assert status == 503 and "broker" in body["failing"]


async def _degraded(api):
    status, body = await api.anonymous("GET", "/readyz")
    return (status, body) if status == 200 and "broker" in body.get("degraded", []) else None


async def _not_ready(api):
    status, body = await api.anonymous("GET", "/readyz")
    return (status, body) if status == 503 and "broker" in body["failing"] else None


async def test_migrations_run_twice_change_nothing(database_url, pg):
    from services.ingest import SERVICE

    schema = f"ingest_copy_{unique_id('m').split('-')[1]}"
    pool = await db.create_pool(database_url, max_size=4)
    try:
        first, second = await asyncio.gather(
            db.migrate(pool, schema, SERVICE.migrations), db.migrate(pool, schema, SERVICE.migrations)
        )
        assert sorted([first, second], key=len) == [[], [path.name for path in db.migration_files(SERVICE.migrations)]]
        assert max(first, second, key=len)[:3] == ["000_messaging.sql", "001_operators.sql", "001_chargers_and_archive.sql"]
        assert await db.migrate(pool, schema, SERVICE.migrations) == []
        tables = await pg.fetch("SELECT table_name FROM information_schema.tables WHERE table_schema = $1", schema)
        assert {t["table_name"] for t in tables} == {"schema_migrations", "inbox", "outbox", "operators", "chargers", "auth_failures",
                                                     "events", "spool", "retention_horizon", "audit"}
    finally:
        await pg.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await pool.close()


async def test_a_secret_never_appears_in_a_response_a_log_line_or_the_database(api, pg, caplog):
    caplog.set_level(logging.DEBUG)
    cp, secret, rotated = unique_id(), "correct-horse-battery", "staple-staple-staple"
    bodies = [
        await api.admin("POST", "/v1/chargers", {"chargePointId": cp, "secret": secret}),
        await api.gateway("POST", f"/v1/gateway/chargers/{cp}/auth", {"presentedSecret": secret}),
        await api.gateway("POST", f"/v1/gateway/chargers/{cp}/auth", {"presentedSecret": secret + "x"}),
        await api.admin("PUT", f"/v1/chargers/{cp}/secret", {"secret": rotated}),
        await api.admin("POST", "/v1/chargers", {"chargePointId": cp, "secret": secret}),  # 409
        await api.admin("POST", "/v1/chargers", {"chargePointId": "bad id", "secret": secret}),  # 400
    ]
    assert [status for status, _ in bodies] == [201, 200, 401, 200, 409, 400]
    for _, body in bodies:
        assert secret not in str(body) and rotated not in str(body)
    formatted = "\n".join(logging.getLogger().handlers[0].format(r) if logging.getLogger().handlers else r.getMessage()
                          for r in caplog.records)
    assert secret not in formatted and rotated not in formatted
    stored = await pg.fetchval("SELECT secret_hash FROM ingest.chargers WHERE charge_point_id = $1", cp)
    assert stored.startswith("scrypt$") and secret not in stored and rotated not in stored


async def test_two_hashes_of_one_secret_differ(api, pg):
    a, b = unique_id(), unique_id()
    for cp in (a, b):
        await api.admin("POST", "/v1/chargers", {"chargePointId": cp, "secret": "same-secret-twice"})
    rows = await pg.fetch("SELECT secret_hash FROM ingest.chargers WHERE charge_point_id = ANY($1)", [a, b])
    assert len({r["secret_hash"] for r in rows}) == 2  # salted


async def test_database_down_answers_503_not_500(make_api, settings):
    proxy = TcpProxy.to(settings.database_url)
    await proxy.start()
    try:
        api = await make_api(services=["ingest"], database_url=proxy.url)
        cp = unique_id()
        assert (await api.admin("POST", "/v1/chargers", {"chargePointId": cp, "secret": "some-secret"}))[0] == 201
        await proxy.close()
        status, body = await api.gateway("POST", f"/v1/gateway/chargers/{cp}/auth", {"presentedSecret": "some-secret"})
        assert status == 503 and body["status"] == 503
    finally:
        await proxy.close()
