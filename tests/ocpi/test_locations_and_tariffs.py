"""Locations and Tariffs as a partner sees them: GET with pagination, and every change pushed to
its receivers, in order, also after it was down."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from tests.ocpi.conftest import Cpo
from tests.ocpi.emsp import Emsp
from tests.support import eventually, unique_id

TYPE2 = {"standard": "IEC_62196_T2", "format": "SOCKET", "powerType": "AC_3_PHASE", "maxVoltage": 400, "maxAmperage": 32,
         "maxElectricPower": 22000}
_clock = [datetime(2026, 11, 25, 10, 0, tzinfo=UTC)]


def _ts() -> str:
    _clock[0] += timedelta(seconds=1)
    return _clock[0].strftime("%Y-%m-%dT%H:%M:%SZ")


async def make_site(cpo: Cpo, **fields) -> str:
    body = {"name": f"Site {uuid.uuid4().hex[:6]}", "timeZone": "Europe/Amsterdam", "address": "Stationsplein 1",
            "city": "Amsterdam", "postalCode": "1012AB", "country": "NLD",
            "coordinates": {"latitude": "52.37888", "longitude": "4.90072"}, **fields}
    status, site = await cpo.api.admin("POST", "/v1/sites", body)
    assert status == 201, site
    return site["siteId"]


async def make_charger(cpo: Cpo, site_id: str, connectors: int = 1) -> str:
    cp = unique_id()
    status, body = await cpo.api.admin("POST", "/v1/chargers", {"chargePointId": cp, "secret": "s3cret-s3cret", "siteId": site_id})
    assert status == 201, body
    for connector in range(1, connectors + 1):
        status, body = await cpo.api.admin("PUT", f"/v1/chargers/{cp}/connectors/{connector}", TYPE2)
        assert status == 200, body
    return cp


async def report(cpo: Cpo, cp: str, connector: int, status: str) -> None:
    """A StatusNotification, applied by sessions before the next: statuses of one connector that
    arrive together are one change (the newest), as they are for the charger's own views."""
    await cpo.api.send_events({"type": "ConnectorStatusChanged", "chargePointId": cp, "ts": _ts(), "connectorId": connector,
                               "status": status, "errorCode": "NoError"})

    async def applied() -> bool:
        code, body = await cpo.api.admin("GET", f"/v1/chargers/{cp}/connectors")
        return code == 200 and any(c["connectorId"] == connector and c["status"] == status for c in body["items"])

    await eventually(applied)


async def location_of(emsp: Emsp, cpo: Cpo, site_id: str) -> dict | None:
    status, body, _ = await emsp.call("GET", f"{cpo.url}/ocpi/2.2.1/locations/{site_id}")
    return body["data"] if status == 200 else None


async def test_a_site_is_a_location_with_its_chargers_connectors_as_evses(cpo: Cpo, emsp: Emsp) -> None:
    await cpo.registered_emsp(emsp)
    site_id = await make_site(cpo)
    cp = await make_charger(cpo, site_id, connectors=2)
    status, tariff = await cpo.api.admin("POST", f"/v1/sites/{site_id}/tariffs", {"pricePerKwh": "0.35", "currency": "EUR"})
    assert status == 201, tariff
    await report(cpo, cp, 1, "Charging")

    async def complete() -> dict | None:
        location = await location_of(emsp, cpo, site_id)
        if location and len(location["evses"]) == 2 and location["evses"][0]["status"] == "CHARGING" \
                and location["evses"][0]["connectors"][0].get("tariff_ids"):
            return location
        return None

    location = await eventually(complete)
    assert location["country_code"] == "NL" and location["party_id"] == "CPM" and location["id"] == site_id
    assert location["address"] == "Stationsplein 1" and location["country"] == "NLD" and location["time_zone"] == "Europe/Amsterdam"
    assert location["coordinates"] == {"latitude": "52.37888", "longitude": "4.90072"} and location["publish"] is True
    first, second = location["evses"]
    assert first["uid"] == f"{cp}*1" and second["uid"] == f"{cp}*2" and second["status"] == "UNKNOWN"
    connector = first["connectors"][0]
    assert connector == {"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET", "power_type": "AC_3_PHASE",
                         "max_voltage": 400, "max_amperage": 32, "max_electric_power": 22000,
                         "tariff_ids": [tariff["tariffId"]], "last_updated": connector["last_updated"]}
    # the EVSE and its connector on their own
    status, body, _ = await emsp.call("GET", f"{cpo.url}/ocpi/2.2.1/locations/{site_id}/{cp}*1")
    assert status == 200 and body["data"]["status"] == "CHARGING"
    status, body, _ = await emsp.call("GET", f"{cpo.url}/ocpi/2.2.1/locations/{site_id}/{cp}*1/1")
    assert status == 200 and body["data"]["standard"] == "IEC_62196_T2"
    # the tariff, as OCPI writes it, numbers as numbers
    status, body, _ = await emsp.call("GET", f"{cpo.url}/ocpi/2.2.1/tariffs?limit=1000")
    ours = next(t for t in body["data"] if t["id"] == tariff["tariffId"])
    assert ours["currency"] == "EUR" and ours["country_code"] == "NL" and ours["party_id"] == "CPM"
    assert ours["elements"][0]["price_components"][0]["type"] == "ENERGY"
    assert ours["elements"][0]["price_components"][0]["price"] == 0.35


async def test_ocpp_statuses_become_evse_statuses_and_each_change_is_pushed(cpo: Cpo, emsp: Emsp) -> None:
    await cpo.registered_emsp(emsp)
    site_id = await make_site(cpo)
    cp = await make_charger(cpo, site_id)
    uid = f"{cp}*1"
    await eventually(lambda: _pushed(emsp, site_id, lambda p: p.method == "PUT" and p.path == f"/NL/CPM/{site_id}/{uid}"))
    expected = [("Available", "AVAILABLE"), ("Preparing", "CHARGING"), ("Charging", "CHARGING"), ("Finishing", "CHARGING"),
                ("Reserved", "RESERVED"), ("Unavailable", "INOPERATIVE"), ("Faulted", "OUTOFORDER"), ("Available", "AVAILABLE")]
    for ocpp, _ in expected:
        await report(cpo, cp, 1, ocpp)

    # Preparing -> Charging -> Finishing stay CHARGING: one PATCH for the three
    wanted = ["AVAILABLE", "CHARGING", "RESERVED", "INOPERATIVE", "OUTOFORDER", "AVAILABLE"]

    async def patched() -> list[str] | None:
        statuses = [p.body["status"] for p in emsp.pushes("locations") if p.method == "PATCH" and p.path == f"/NL/CPM/{site_id}/{uid}"]
        return statuses if len(statuses) >= len(wanted) else None

    assert await eventually(patched) == wanted
    patch = next(p for p in emsp.pushes("locations") if p.method == "PATCH")
    assert set(patch.body) == {"status", "last_updated"}
    assert patch.headers["OCPI-to-party-id"] == "EMS" and patch.headers["OCPI-from-party-id"] == "CPM"
    assert patch.headers["Authorization"].startswith("Token ")


async def test_a_charger_that_leaves_the_gateway_is_unknown_until_it_is_back(cpo: Cpo, emsp: Emsp) -> None:
    await cpo.registered_emsp(emsp)
    site_id = await make_site(cpo)
    cp = await make_charger(cpo, site_id)

    async def evse_status() -> str | None:
        location = await location_of(emsp, cpo, site_id)
        return location["evses"][0]["status"] if location and location["evses"] else None

    await report(cpo, cp, 1, "Available")
    await eventually(lambda: _is(evse_status, "AVAILABLE"))
    await cpo.api.send_events({"type": "ChargerDisconnected", "chargePointId": cp, "ts": _ts(), "reason": "closed"})
    await eventually(lambda: _is(evse_status, "UNKNOWN"))
    await cpo.api.send_events({"type": "ChargerConnected", "chargePointId": cp, "ts": _ts(), "remoteAddr": "10.0.0.1"})
    await eventually(lambda: _is(evse_status, "AVAILABLE"))

    async def pushed() -> list[str]:
        return [p.body["status"] for p in emsp.pushes("locations") if p.method == "PATCH" and p.path.startswith(f"/NL/CPM/{site_id}/")]

    await eventually(lambda: _is(lambda: _last_two(pushed), ["UNKNOWN", "AVAILABLE"]))


async def test_a_partner_down_for_a_while_gets_every_change_in_order(cpo: Cpo, emsp: Emsp) -> None:
    created = await cpo.registered_emsp(emsp)
    site_id = await make_site(cpo)
    cp = await make_charger(cpo, site_id)
    uid = f"{cp}*1"
    await eventually(lambda: _pushed(emsp, site_id, lambda p: p.path == f"/NL/CPM/{site_id}/{uid}"))
    emsp.down = True
    sequence = ["Available", "Charging", "Available", "Faulted", "Available", "Unavailable"]
    for ocpp in sequence:
        await report(cpo, cp, 1, ocpp)
    status, tariff = await cpo.api.admin("POST", f"/v1/sites/{site_id}/tariffs", {"pricePerKwh": "0.40", "currency": "EUR"})
    assert status == 201

    async def backlog() -> int:
        partner = await cpo.partner(created["partnerId"])
        return partner["pushBacklog"] if partner["pushBacklog"] >= len(sequence) + 2 and partner["lastPushError"] else 0

    assert await eventually(backlog) >= len(sequence) + 2  # six PATCHes, the tariff and its Location
    seen_while_down = len(emsp.received)
    emsp.down = False

    async def drained() -> bool:
        return (await cpo.partner(created["partnerId"]))["pushBacklog"] == 0

    await eventually(drained, timeout=30)
    after = [p for _, p in emsp.received[seen_while_down:]]
    statuses = [p.body["status"] for p in after if p.method == "PATCH" and p.path == f"/NL/CPM/{site_id}/{uid}"]
    assert statuses == ["AVAILABLE", "CHARGING", "AVAILABLE", "OUTOFORDER", "AVAILABLE", "INOPERATIVE"]
    tariff_puts = [p for m, p in emsp.received[seen_while_down:] if m == "tariffs" and p.path.endswith(tariff["tariffId"])]
    assert len(tariff_puts) == 1 and tariff_puts[0].method == "PUT"
    # the Location after the tariff names it, and went after every PATCH before it
    location_puts = [i for i, p in enumerate(after) if p.method == "PUT" and p.path == f"/NL/CPM/{site_id}"]
    assert location_puts and location_puts[-1] > max(i for i, p in enumerate(after) if p.method == "PATCH")
    assert after[location_puts[-1]].body["evses"][0]["connectors"][0]["tariff_ids"] == [tariff["tariffId"]]


async def test_a_site_changed_or_a_charger_moved_is_pushed(cpo: Cpo, emsp: Emsp) -> None:
    await cpo.registered_emsp(emsp)
    first, second = await make_site(cpo), await make_site(cpo, city="Utrecht")
    cp = await make_charger(cpo, first)
    status, _ = await cpo.api.admin("PUT", f"/v1/sites/{first}", {
        "name": "Renamed", "address": "Damrak 1", "city": "Amsterdam", "country": "NLD",
        "coordinates": {"latitude": "52.37500", "longitude": "4.89500"}, "publish": False})
    assert status == 200
    await eventually(lambda: _pushed(emsp, first, lambda p: p.method == "PUT" and p.path == f"/NL/CPM/{first}"
                                     and p.body["name"] == "Renamed" and p.body["publish"] is False))
    status, _ = await cpo.api.admin("PUT", f"/v1/chargers/{cp}/site", {"siteId": second})
    assert status == 200
    await eventually(lambda: _pushed(emsp, first, lambda p: p.path == f"/NL/CPM/{first}/{cp}*1" and p.body["status"] == "REMOVED"))
    moved = await eventually(lambda: _pushed(emsp, second, lambda p: p.path == f"/NL/CPM/{second}" and p.body["evses"]))
    assert moved.body["evses"][0]["uid"] == f"{cp}*1" and moved.body["city"] == "Utrecht"
    assert (await location_of(emsp, cpo, first))["evses"] == []


async def test_lists_are_paginated_with_the_headers_ocpi_gives(cpo: Cpo, emsp: Emsp) -> None:
    await cpo.registered_emsp(emsp)
    for _ in range(3):
        await make_site(cpo)
    url = f"{cpo.url}/ocpi/2.2.1/locations"
    status, body, headers = await emsp.call("GET", f"{url}?limit=2")
    assert status == 200 and body["status_code"] == 1000
    total = int(headers["X-Total-Count"])
    assert total >= 3 and headers["X-Limit"] == "2" and len(body["data"]) == 2
    assert headers["Link"].startswith(f"<{url}?") and headers["Link"].endswith('>; rel="next"') and "offset=2" in headers["Link"]
    seen = [location["id"] for location in body["data"]]
    while "Link" in headers:
        status, body, headers = await emsp.call("GET", headers["Link"][1:headers["Link"].index(">")])
        assert status == 200
        seen += [location["id"] for location in body["data"]]
    assert len(seen) == total == len(set(seen))
    # date_from is inclusive, date_to exclusive, on last_updated
    status, body, _ = await emsp.call("GET", f"{url}?limit=1000")
    newest = max(body["data"], key=lambda location: location["last_updated"])
    status, body, headers = await emsp.call("GET", f"{url}?date_from={newest['last_updated']}")
    assert newest["id"] in [location["id"] for location in body["data"]]
    status, body, headers = await emsp.call("GET", f"{url}?date_to={newest['last_updated']}")
    assert newest["id"] not in [location["id"] for location in body["data"]]
    # a limit above the most is capped, and said so
    status, body, headers = await emsp.call("GET", f"{cpo.url}/ocpi/2.2.1/tariffs?limit=100000")
    assert status == 200 and headers["X-Limit"] == "100"


async def test_bad_requests_are_envelopes_with_the_right_codes(cpo: Cpo, emsp: Emsp) -> None:
    await cpo.registered_emsp(emsp)
    site_id = await make_site(cpo)
    base = f"{cpo.url}/ocpi/2.2.1"
    cases = [
        (f"{base}/locations/not-a-location", 404, 2003),
        (f"{base}/locations/{uuid.uuid4()}", 404, 2003),
        (f"{base}/locations/{site_id}/nobody*1", 404, 2000),
        (f"{base}/locations/{site_id}/no-evse-uid", 404, 2000),
        (f"{base}/locations?offset=-1", 400, 2001),
        (f"{base}/locations?limit=0", 400, 2001),
        (f"{base}/locations?limit=ten", 400, 2001),
        (f"{base}/tariffs?date_from=yesterday", 400, 2001),
        (f"{base}/tariffs?date_to=2026-01-01T00:00:00", 400, 2001),  # no zone: not a DateTime in UTC
        (f"{base}/locations/%00", 400, 2001),
        (f"{base}/nothing-here", 404, 2000),
    ]
    for url, http_status, code in cases:
        status, body, _ = await emsp.call("GET", url)
        assert (status, body["status_code"]) == (http_status, code), (url, status, body)
        assert "timestamp" in body and "status_message" in body
    status, body, _ = await emsp.call("POST", f"{base}/locations", json={})
    assert status == 405 and body["status_code"] == 2000
    status, body, _ = await emsp.call("GET", f"{base}/locations", token="not-a-token")
    assert status == 401 and body["status_code"] == 2000
    status, body, _ = await emsp.call("GET", f"{base}/locations", headers={"OCPI-to-country-code": "FR", "OCPI-to-party-id": "XYZ"})
    assert status == 400 and body["status_code"] == 2001


async def test_token_a_serves_only_to_register(cpo: Cpo, emsp: Emsp) -> None:
    created = await cpo.create_partner()
    for path in ("/ocpi/2.2.1/locations", "/ocpi/2.2.1/tariffs"):
        status, body, _ = await emsp.call("GET", f"{cpo.url}{path}", token=created["tokenA"])
        assert status == 401 and body["status_code"] == 2000


async def _pushed(emsp: Emsp, site_id: str, match) -> object:
    return next((p for p in reversed(emsp.pushes("locations")) if site_id in p.path and match(p)), None)


async def _last_two(probe) -> list:
    return (await probe())[-2:]


async def _is(probe, value) -> bool:
    return await probe() == value
