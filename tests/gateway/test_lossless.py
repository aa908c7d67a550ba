"""Lossless (CONTRACT section 11): a call is answered only after ingest took its events; while
ingest cannot, the charger hears InternalError and sends the message again, and the resend is
counted once. Timestamps keep their fractions; the events of calls that arrive together from
many chargers travel to ingest in one request."""
from __future__ import annotations

import asyncio
import contextlib
import json

from ocpp.exceptions import InternalError
from ocpp.v16 import call
from tests.gateway.conftest import api_url, connected
from tests.gateway.test_calls import charger_time
from tests.support import TcpProxy, eventually


async def test_while_ingest_refuses_the_charger_hears_internal_error_and_its_resend_counts_once(api, make_gateway, registered, pg):
    cp, secret = await registered()
    target = api.client.server
    proxy = TcpProxy("127.0.0.1", target.port)
    await proxy.start()
    gateway = await make_gateway(base_url=f"http://127.0.0.1:{proxy.port}", call_deadline_seconds=2.0)
    try:
        async with connected(gateway, cp, secret) as charger:
            started = await charger.call(call.StartTransaction(connector_id=1, id_tag="RFID-LOSSLESS", meter_start=1000,
                                                               timestamp=charger_time(-600)))
            stop = call.StopTransaction(meter_stop=6000, timestamp=charger_time(), transaction_id=started.transaction_id,
                                        reason="Local", transaction_data=[{"timestamp": charger_time(-300), "sampledValue": [
                                            {"value": "3000", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}])
            proxy.freeze()  # ingest goes silent: the request hangs, the charger's call waits
            try:
                await charger.call(stop, suppress=False)
                raise AssertionError("answered while ingest could not take the events")
            except InternalError:
                pass
            proxy.thaw()  # the stalled request may reach ingest now: the resend below is the same events
            await charger.call(stop, suppress=False)  # OCPP 1.6: the charger sends the transaction message again

            await proxy.close()  # ingest refuses connections: the same again
            beat = asyncio.create_task(charger.call(call.Heartbeat(), suppress=False))
            await asyncio.sleep(0.5)
            await proxy.start(port=proxy.port)  # back within the call's deadline: answered, nothing lost
            assert (await beat).current_time
    finally:
        await proxy.close()

    async def ended():
        _, body = await api.admin("GET", f"/v1/chargers/{cp}/sessions")
        items = body.get("items", [])
        return items if items and items[0]["endedAt"] else None

    sessions = await eventually(ended)
    assert [(s["transactionId"], s["energyWh"]) for s in sessions] == [(started.transaction_id, 5000)]
    ended_events = await pg.fetchval(
        "SELECT count(*) FROM ingest.events WHERE charge_point_id = $1 AND type = 'TransactionEnded'", cp)
    assert ended_events == 1  # sent up to three times, taken once


async def test_timestamps_keep_their_fractions_and_missing_ones_get_milliseconds(gateway, registered, pg):
    cp, secret = await registered()
    sent_ts = "2026-11-25T10:00:00.123456+01:00"
    async with connected(gateway, cp, secret) as charger:
        await charger.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Available", timestamp=sent_ts))
        await charger.call(call.StatusNotification(connector_id=2, error_code="NoError", status="Available"))

    async def archived():
        rows = await pg.fetch("SELECT body FROM ingest.events WHERE charge_point_id = $1 AND type = 'ConnectorStatusChanged'", cp)
        return {r["body"]["connectorId"]: r["body"]["ts"] for r in rows} if len(rows) == 2 else None

    stamps = await eventually(archived)
    assert stamps[1] == sent_ts
    assert len(stamps[2]) == len("2026-11-25T10:00:00.123Z") and stamps[2].endswith("Z")


class CountingIngest:
    """Counts the gateway's requests to ingest (the real one behind it) and the events in each."""

    def __init__(self, api) -> None:
        self.api, self.batches = api, []

    async def start(self):
        from aiohttp import ClientSession, web
        from aiohttp.test_utils import TestServer

        session = self.session = ClientSession()

        async def relay(request: web.Request) -> web.Response:
            body = await request.read()
            if request.path == "/v1/gateway/events":
                data = json.loads(body)
                self.batches.append(len(data) if isinstance(data, list) else 1)
            async with session.request(request.method, api_url(self.api) + request.path_qs, data=body,
                                       headers={k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")}) as answer:
                return web.Response(status=answer.status, body=await answer.read(), headers={"Content-Type": answer.content_type})

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", relay)
        self.server = TestServer(app)
        await self.server.start_server()
        return f"http://127.0.0.1:{self.server.port}"

    async def close(self):
        await self.server.close()
        await self.session.close()


async def test_calls_arriving_together_from_many_chargers_travel_to_ingest_together(api, make_gateway, registered):
    ingest = CountingIngest(api)
    gateway = await make_gateway(base_url=await ingest.start(), batch_linger_seconds=0.2)
    chargers = [await registered() for _ in range(12)]
    try:
        async with contextlib.AsyncExitStack() as stack:
            connections = [await stack.enter_async_context(connected(gateway, cp, secret)) for cp, secret in chargers]
            await asyncio.sleep(0.5)
            before = len(ingest.batches)
            answers = await asyncio.gather(*(c.boot() for c in connections))
            assert all(a.status == "Accepted" for a in answers)
            boots = ingest.batches[before:]
            assert sum(boots) == 12
            assert len(boots) < 12, boots  # fewer requests than calls: batches, not one request per event
    finally:
        await ingest.close()
