"""The OpenAPI document: served without a key, the same operations as the router, and real
responses of every kind of resource that match it."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.catalogue import SERVICES
from shared.app import OPENAPI, PUBLIC_OPENAPI, SETTINGS, create_app
from shared.jsonutil import format_ts, loads
from tests.ops.apidoc import ApiDoc, served_document
from tests.support import eventually, unique_id


def router_operations(app) -> set[tuple[str, str]]:
    return {(route.method, route.resource.canonical) for route in app.router.routes() if route.method != "HEAD"}


@pytest.mark.parametrize("wiring", [["all"], *([name] for name in SERVICES)], ids=lambda w: w[0])
def test_the_document_lists_exactly_the_routes_a_process_serves(make_settings, wiring):
    specs = list(SERVICES.values()) if wiring == ["all"] else [SERVICES[wiring[0]]]
    app = create_app(make_settings(), specs)  # not started: only its router and document are read
    document = ApiDoc(loads(app[OPENAPI]))
    assert document.operations() == router_operations(app)


async def test_the_document_is_openapi_3_1_and_needs_no_key(api):
    status, document = await api.anonymous("GET", "/openapi.json")
    assert status == 200 and api.last_response.content_type == "application/json"
    assert document["openapi"].startswith("3.1")
    assert set(document["components"]["securitySchemes"]) == {"gatewayKey", "operatorToken", "ocpiToken"}
    events = document["paths"]["/v1/gateway/events"]["post"]
    assert events["security"] == [{"gatewayKey": []}]
    assert {"202", "400", "401", "413", "415", "503"} <= set(events["responses"])
    assert document["paths"]["/v1/sites"]["post"]["security"] == [{"operatorToken": []}]
    assert document["paths"]["/livez"]["get"]["security"] == []


async def test_a_single_service_process_describes_only_its_operations(make_api):
    billing = await make_api(services=["billing"])
    document = await served_document(billing)
    paths = set(document.document["paths"])
    assert "/v1/settlements" in paths and "/v1/gateway/events" not in paths and "/v1/commands" not in paths


async def test_every_process_can_describe_the_whole_public_api_for_the_edge(make_api):
    billing = await make_api(services=["billing"])
    status, own = await billing.anonymous("GET", "/openapi.json?scope=public")
    assert status == 200 and own == loads(billing.client.server.app[OPENAPI])  # no public list given: its own
    # As `cpms run billing` wires it: ?scope=public describes every service (the edge's /openapi.json).
    whole = create_app(billing.client.server.app[SETTINGS], [SERVICES["billing"]], public=list(SERVICES.values()))
    assert {"/v1/settlements", "/v1/gateway/events", "/v1/commands", "/v1/tokens", "/livez"} <= set(loads(whole[PUBLIC_OPENAPI])["paths"])
    assert "/v1/commands" not in loads(whole[OPENAPI])["paths"]


async def test_real_responses_match_the_document(api):
    doc = await served_document(api)
    cp = unique_id()

    async def call(kind: str, method: str, path: str, template: str, status: int, json=None):
        _, body = await getattr(api, kind)(method, path, json)
        return doc.check(api, method, template, status, body)

    await call("gateway", "POST", f"/v1/gateway/chargers/{cp}/auth", "/v1/gateway/chargers/{chargePointId}/auth", 401,
               {"presentedSecret": "nope-nope"})
    await call("admin", "POST", "/v1/chargers", "/v1/chargers", 201, {"chargePointId": cp, "secret": "conformance-secret"})
    await call("admin", "POST", "/v1/chargers", "/v1/chargers", 409, {"chargePointId": cp, "secret": "conformance-secret"})
    await call("admin", "PUT", f"/v1/chargers/{cp}/active", "/v1/chargers/{chargePointId}/active", 200, {"isActive": True})
    await call("gateway", "POST", f"/v1/gateway/chargers/{cp}/auth", "/v1/gateway/chargers/{chargePointId}/auth", 200,
               {"presentedSecret": "conformance-secret"})
    site = await call("admin", "POST", "/v1/sites", "/v1/sites", 201, {"name": "Conformance"})
    await call("admin", "POST", f"/v1/sites/{site['siteId']}/wallet", "/v1/sites/{siteId}/wallet", 200, {"wallet": "rWallet1"})
    tariff = await call("admin", "POST", f"/v1/sites/{site['siteId']}/tariffs", "/v1/sites/{siteId}/tariffs", 201,
                        {"pricePerKwh": "0.25", "currency": "EUR"})
    await call("admin", "GET", f"/v1/sites/{site['siteId']}/tariffs", "/v1/sites/{siteId}/tariffs", 200)
    await call("admin", "GET", "/v1/sites?limit=1", "/v1/sites", 200)
    await call("admin", "PUT", f"/v1/chargers/{cp}/site", "/v1/chargers/{chargePointId}/site", 200, {"siteId": site["siteId"]})

    started = max(datetime.now(UTC), datetime.fromisoformat(tariff["createdAt"]) + timedelta(seconds=1))
    events = [
        {"type": "ChargerBooted", "chargePointId": cp, "vendor": "V", "model": "M"},
        {"type": "ConnectorStatusChanged", "chargePointId": cp, "connectorId": 1, "status": "Charging", "errorCode": "NoError"},
        {"type": "TransactionStarted", "chargePointId": cp, "connectorId": 1, "transactionId": 7, "idTag": "TAG",
         "meterStartWh": 1000, "ts": format_ts(started)},
        {"type": "MeterSample", "chargePointId": cp, "transactionId": 7, "samples": [{"value": "1500"}],
         "ts": format_ts(started + timedelta(minutes=1))},
    ]
    await call("gateway", "POST", "/v1/gateway/events", "/v1/gateway/events", 202, events)
    await call("gateway", "POST", "/v1/gateway/events", "/v1/gateway/events", 202,
               {"type": "TransactionEnded", "chargePointId": cp, "transactionId": 7, "meterStopWh": 5000,
                "ts": format_ts(started + timedelta(minutes=20))})
    await call("gateway", "POST", "/v1/gateway/events", "/v1/gateway/events", 400, [{"type": "TransactionEnded"}])

    async def priced():
        _, body = await api.admin("GET", f"/v1/chargers/{cp}/sessions")
        return body["items"][0] if body.get("items") and body["items"][0]["costAmount"] is not None else None

    session = await eventually(priced)
    await call("admin", "GET", f"/v1/chargers/{cp}/sessions", "/v1/chargers/{chargePointId}/sessions", 200)
    await call("admin", "GET", f"/v1/chargers/{cp}", "/v1/chargers/{chargePointId}", 200)
    await call("admin", "GET", f"/v1/chargers/{cp}/connectors", "/v1/chargers/{chargePointId}/connectors", 200)
    await call("admin", "GET", f"/v1/sessions/{session['sessionId']}", "/v1/sessions/{sessionId}", 200)
    await call("admin", "POST", f"/v1/sessions/{session['sessionId']}/finalize", "/v1/sessions/{sessionId}/finalize", 200)

    async def settlement():
        _, body = await api.admin("GET", f"/v1/settlements?sessionId={session['sessionId']}")
        return body["items"][0] if body.get("items") else None

    settled = await eventually(settlement)
    sid = settled["settlementId"]
    await call("admin", "GET", f"/v1/settlements?sessionId={session['sessionId']}", "/v1/settlements", 200)
    await call("admin", "GET", f"/v1/settlements/{sid}", "/v1/settlements/{settlementId}", 200)
    await call("admin", "POST", f"/v1/settlements/{sid}/confirmed", "/v1/settlements/{settlementId}/confirmed", 409)
    await call("admin", "POST", f"/v1/settlements/{sid}/submitted", "/v1/settlements/{settlementId}/submitted", 200,
               {"chain": "XRPL", "txHash": "ABC123"})
    await call("admin", "POST", f"/v1/settlements/{sid}/failed", "/v1/settlements/{settlementId}/failed", 200, {"error": "timeout"})

    command = {"type": "Reset", "chargePointId": cp, "idempotencyKey": unique_id("key"), "payload": {"type": "Soft"}}
    created = await call("admin", "POST", "/v1/commands", "/v1/commands", 202, command)
    await call("admin", "POST", "/v1/commands?wait=10", "/v1/commands", 200, command)
    await call("admin", "GET", f"/v1/commands/{created['commandId']}", "/v1/commands/{commandId}", 200)
    await call("admin", "GET", f"/v1/commands?chargePointId={cp}", "/v1/commands", 200)
    await call("admin", "POST", "/v1/commands", "/v1/commands", 409, {**command, "payload": {"type": "Hard"}})
    await call("anonymous", "GET", "/v1/commands", "/v1/commands", 401)
    for path in ("/livez", "/readyz", "/healthz"):
        await call("anonymous", "GET", path, path, 200)
