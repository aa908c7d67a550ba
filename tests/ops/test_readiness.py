"""Readiness follows the dependencies: 503 naming the one that is gone (200 "degraded" for the
broker in a process whose spool holds the gateway's events meanwhile), 200 again once it is
back, without a restart, and the process works again."""
from __future__ import annotations

from tests.support import TcpProxy, eventually, unique_id


async def _readiness(api, *, failing: str | None):
    status, body = await api.anonymous("GET", "/readyz")
    if failing is None:
        return body if status == 200 and body["status"] == "ok" else None
    if failing == "broker":  # this process takes the gateway's events: its spool holds them meanwhile
        return body if status == 200 and failing in body.get("degraded", []) else None
    return body if status == 503 and failing in body.get("failing", []) else None


async def test_readiness_turns_503_and_recovers_when_postgres_and_rabbitmq_go_and_return(make_api, settings):
    pg_proxy, amqp_proxy = TcpProxy.to(settings.database_url), TcpProxy.to(settings.amqp_url)
    await pg_proxy.start()
    await amqp_proxy.start()
    try:
        api = await make_api(database_url=pg_proxy.url, amqp_url=amqp_proxy.url)
        await eventually(lambda: _readiness(api, failing=None))

        for name, proxy in (("database", pg_proxy), ("broker", amqp_proxy)):
            await proxy.close()
            body = await eventually(lambda name=name: _readiness(api, failing=name), timeout=10)
            assert body["checks"][name] == "failing"
            assert body["status"] == ("degraded" if name == "broker" else "unavailable")
            healthz_status, _ = await api.anonymous("GET", "/healthz")
            assert healthz_status == (200 if name == "broker" else 503)
            assert (await api.anonymous("GET", "/livez"))[0] == 200

            await proxy.start(port=proxy.port)
            body = await eventually(lambda: _readiness(api, failing=None), timeout=30)
            assert set(body["checks"].values()) == {"ok"}

        # Back for real: an event goes through the broker and a consumer into the database.
        cp = unique_id()
        assert (await api.admin("POST", "/v1/chargers", {"chargePointId": cp, "secret": "recovered-secret"}))[0] == 201
        await api.send_events({"type": "ChargerBooted", "chargePointId": cp, "vendor": "Recovered", "model": "R1"})

        async def booted():
            status, body = await api.admin("GET", f"/v1/chargers/{cp}")
            return status == 200 and body["vendor"] == "Recovered"

        await eventually(booted)
    finally:
        await pg_proxy.close()
        await amqp_proxy.close()
