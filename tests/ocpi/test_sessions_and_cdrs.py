"""Sessions and CDRs (SENDER) of a partner's token, end to end: charger events posted as the
reference gateway posts them, the partner's Session PUT at the start and PATCHed with its cost so
far and its end, its CDR the settlement to the cent, pushes that wait while the partner is down
and never come twice, a re-priced session credited and billed anew, and the Sender interfaces."""
from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from shared.jsonutil import format_ts
from tests.ocpi.conftest import Cpo
from tests.ocpi.emsp import COUNTRY_CODE as EMSP_COUNTRY, PARTY_ID as EMSP_PARTY, Emsp
from tests.support import eventually, unique_id


class Charging:
    """A charger of a site with a tariff, and a token the eMSP pushed (Tokens module): on its
    whitelist, or (`realtime`) whitelist NEVER, which the eMSP allows when asked in real time."""

    def __init__(self, cpo: Cpo, cp: str, site: dict, uid: str, start: datetime) -> None:
        self.cpo, self.cp, self.site, self.uid, self.start = cpo, cp, site, uid, start

    @classmethod
    async def ready(cls, cpo: Cpo, emsp: Emsp, *, price: str = "0.30", realtime: bool = False) -> Charging:
        api = cpo.api
        status, site = await api.admin("POST", "/v1/sites", {
            "name": "Depot Roam", "address": "Keizersgracht 1", "city": "Amsterdam", "postalCode": "1015 CJ", "country": "NLD",
            "coordinates": {"latitude": "52.37000", "longitude": "4.89000"}})
        assert status == 201, site
        status, tariff = await api.admin("POST", f"/v1/sites/{site['siteId']}/tariffs", {"pricePerKwh": price, "currency": "EUR"})
        assert status == 201, tariff
        cp = unique_id()
        assert (await api.admin("POST", "/v1/chargers", {"chargePointId": cp, "secret": "roaming-secret"}))[0] == 201
        assert (await api.admin("PUT", f"/v1/chargers/{cp}/site", {"siteId": site["siteId"]}))[0] == 200
        uid = f"RFID{uuid.uuid4().hex[:10].upper()}"
        if realtime:
            emsp.authorizations[uid] = "ALLOWED"
        status, answer, _ = await emsp.call("PUT", f"{cpo.url}/ocpi/2.2.1/tokens/{EMSP_COUNTRY}/{EMSP_PARTY}/{uid}", json={
            "country_code": EMSP_COUNTRY, "party_id": EMSP_PARTY, "uid": uid, "type": "RFID", "contract_id": f"DE-EMS-C{uid[-8:]}",
            "issuer": "Test eMSP", "valid": True, "whitelist": "NEVER" if realtime else "ALWAYS",
            "last_updated": format_ts(datetime.now(UTC))})
        assert status == 200 and answer["status_code"] == 1000, answer

        async def token_known() -> bool:
            status, answer = await api.gateway("POST", "/v1/gateway/authorize", {"chargePointId": cp, "idTag": uid})
            return status == 200 and answer.get("idTagInfo", answer).get("status") == "Accepted"

        await eventually(token_known)
        start = max(datetime.now(UTC), datetime.fromisoformat(tariff["createdAt"])).replace(microsecond=0) + timedelta(seconds=1)
        return cls(cpo, cp, site, uid, start)

    def at(self, seconds: int) -> str:
        return format_ts(self.start + timedelta(seconds=seconds))

    async def started(self, tx: int) -> None:
        await self.cpo.api.send_events({"type": "TransactionStarted", "chargePointId": self.cp, "connectorId": 1, "transactionId": tx,
                                        "idTag": self.uid, "meterStartWh": 1000, "ts": self.at(0)})

    async def reading(self, tx: int, wh: int, seconds: int) -> None:
        await self.cpo.api.send_events({"type": "MeterSample", "chargePointId": self.cp, "connectorId": 1, "transactionId": tx,
                                        "ts": self.at(seconds), "samples": [{"value": str(wh), "measurand": "Energy.Active.Import.Register",
                                                                               "unit": "Wh", "context": "Sample.Periodic"}]})

    async def ended(self, tx: int, seconds: int, meter_stop: int | None = None) -> None:
        event = {"type": "TransactionEnded", "chargePointId": self.cp, "transactionId": tx, "idTag": self.uid, "reason": "Local",
                 "ts": self.at(seconds)}
        if meter_stop is not None:
            event["meterStopWh"] = meter_stop
        await self.cpo.api.send_events(event)

    async def settlement(self, session_id: str, amount: str | None = None) -> dict:
        async def probe() -> dict | None:
            status, body = await self.cpo.api.admin("GET", "/v1/settlements?limit=500")
            found = [s for s in body["items"] if s["sessionId"] == session_id] if status == 200 else []
            return found[0] if found and (amount is None or found[0]["amount"] == amount) else None

        return await eventually(probe)


def session_pushes(emsp: Emsp, session_id: str) -> list:
    return [p for p in emsp.pushes("sessions") if p.path == f"/NL/CPM/{session_id}"]


async def session_id_of(emsp: Emsp) -> str:
    async def first_put() -> str | None:
        puts = [p for p in emsp.pushes("sessions") if p.method == "PUT"]
        return puts[-1].body["id"] if puts else None

    return await eventually(first_put)


async def cdrs_of(emsp: Emsp, session_id: str, count: int) -> list[dict]:
    async def probe() -> list[dict] | None:
        found = [p.body for p in emsp.pushes("cdrs") if p.method == "POST" and p.body["session_id"] == session_id]
        return found if len(found) >= count else None

    return await eventually(probe, timeout=30)


def cents(value: float | int) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


async def test_a_partners_session_is_put_patched_with_its_cost_so_far_and_ends_in_a_cdr_of_the_settlement(cpo: Cpo, emsp: Emsp):
    await cpo.registered_emsp(emsp)
    charging = await Charging.ready(cpo, emsp)
    await charging.started(tx=7)
    session_id = await session_id_of(emsp)

    put = session_pushes(emsp, session_id)[0]
    assert put.method == "PUT" and put.headers["OCPI-to-country-code"] == EMSP_COUNTRY
    session = put.body
    assert (session["country_code"], session["party_id"], session["status"], session["currency"]) == ("NL", "CPM", "ACTIVE", "EUR")
    assert session["cdr_token"] == {"country_code": "DE", "party_id": "EMS", "uid": charging.uid, "type": "RFID",
                                    "contract_id": f"DE-EMS-C{charging.uid[-8:]}"}
    assert session["kwh"] == 0 and session["start_date_time"] == charging.at(0)
    assert session["auth_method"] == "WHITELIST"  # the token's stored whitelist decided; nobody was asked
    assert (session["location_id"], session["connector_id"]) == (charging.site["siteId"], "1")
    assert "end_date_time" not in session and session["last_updated"]

    await charging.reading(7, 4000, 60)  # 3 kWh so far: 0.90

    async def patched_with(cost: float) -> list:
        found = [p for p in session_pushes(emsp, session_id) if p.method == "PATCH" and p.body.get("total_cost", {}).get("incl_vat") == cost]
        return found or None

    patch = (await eventually(lambda: patched_with(0.9)))[0]
    assert patch.body["kwh"] == 3 and patch.body["total_cost"] == {"excl_vat": 0.9, "incl_vat": 0.9} and "last_updated" in patch.body
    assert "cdr_token" not in patch.body  # a PATCH carries what changed
    assert patch.body["charging_periods"][0]["dimensions"][0] == {"type": "ENERGY", "volume": 3}

    await charging.ended(7, 180, meter_stop=13345)  # 12.345 kWh: 3.70

    async def completed() -> list | None:
        found = [p for p in session_pushes(emsp, session_id) if p.method == "PATCH" and p.body.get("status") == "COMPLETED"]
        costs = [p.body["total_cost"] for p in session_pushes(emsp, session_id) if "total_cost" in p.body]
        return found if found and costs[-1]["incl_vat"] == 3.7 else None

    end = (await eventually(completed))[0].body
    assert end["end_date_time"] == charging.at(180)

    [cdr] = await cdrs_of(emsp, session_id, 1)
    settlement = await charging.settlement(session_id)
    assert cents(cdr["total_cost"]["incl_vat"]) == Decimal(settlement["amount"]) == Decimal("3.70")
    assert cdr["currency"] == settlement["currency"] == "EUR"
    assert cdr["total_energy"] == 12.345 and cdr["total_time"] == 0.05 and cdr["total_parking_time"] == 0
    assert cdr["total_energy_cost"] == {"excl_vat": 3.7, "incl_vat": 3.7}
    assert sum(d["volume"] for p in cdr["charging_periods"] for d in p["dimensions"] if d["type"] == "ENERGY") == 12.345
    assert {p["tariff_id"] for p in cdr["charging_periods"]} == {cdr["tariffs"][0]["id"]}
    status, tariffs, _ = await emsp.call("GET", f"{cpo.url}/ocpi/2.2.1/tariffs?limit=100")  # the Tariff as the module states it
    assert status == 200 and cdr["tariffs"][0] in tariffs["data"] and cdr["tariffs"][0]["elements"][0]["price_components"][0]["price"] == 0.3
    assert session["evse_uid"] == f"{charging.cp}*1"
    assert (cdr["start_date_time"], cdr["end_date_time"], cdr["session_id"]) == (charging.at(0), charging.at(180), session_id)
    assert cdr["cdr_token"] == session["cdr_token"] and "credit" not in cdr and cdr["auth_method"] == "WHITELIST"
    location = cdr["cdr_location"]
    assert (location["id"], location["address"], location["city"], location["country"], location["connector_id"]) == (
        charging.site["siteId"], "Keizersgracht 1", "Amsterdam", "NLD", "1")
    assert location["evse_uid"] == session["evse_uid"] and location["coordinates"] == {"latitude": "52.37000", "longitude": "4.89000"}


async def test_a_session_the_partner_authorized_in_real_time_says_so_in_its_session_and_cdr(cpo: Cpo, emsp: Emsp):
    await cpo.registered_emsp(emsp)
    charging = await Charging.ready(cpo, emsp, realtime=True)
    asked = len(emsp.authorize_calls())
    await charging.started(tx=9)
    session_id = await session_id_of(emsp)
    assert session_pushes(emsp, session_id)[0].body["auth_method"] == "AUTH_REQUEST"
    await eventually(lambda: _asked_again(emsp, charging.uid, asked))  # the start was asked of the eMSP in real time

    await charging.ended(9, 120, meter_stop=3000)
    [cdr] = await cdrs_of(emsp, session_id, 1)
    assert cdr["auth_method"] == "AUTH_REQUEST" and cdr["cdr_token"]["uid"] == charging.uid


async def _asked_again(emsp: Emsp, uid: str, before: int) -> bool:
    return uid in emsp.authorize_calls()[before:]


async def test_a_partner_down_gets_every_change_once_back_and_no_cdr_twice(cpo: Cpo, emsp: Emsp):
    created = await cpo.registered_emsp(emsp)
    charging = await Charging.ready(cpo, emsp)
    emsp.down = True
    await charging.started(tx=8)
    await charging.reading(8, 3000, 60)
    await charging.ended(8, 120, meter_stop=6000)  # 5 kWh: 1.50

    async def waiting_with_a_cdr() -> dict | None:  # the CDR is made, and waits with the rest
        partner = await cpo.partner(created["partnerId"])
        status, body, _ = await emsp.call("GET", f"{cpo.url}/ocpi/2.2.1/cdrs")
        mine = [c for c in body["data"] if c["cdr_token"]["uid"] == charging.uid] if status == 200 else []
        return partner if mine and partner["pushBacklog"] >= 2 and partner["lastPushError"] else None

    await eventually(waiting_with_a_cdr, timeout=30)
    assert emsp.pushes("cdrs") == []
    emsp.down = False

    session_id = await session_id_of(emsp)
    [cdr] = await cdrs_of(emsp, session_id, 1)
    settlement = await charging.settlement(session_id)
    assert cents(cdr["total_cost"]["incl_vat"]) == Decimal(settlement["amount"]) == Decimal("1.50")
    pushes = session_pushes(emsp, session_id)  # sent in order once back: the PUT, then what changed
    assert pushes[0].method == "PUT" and all(p.method == "PATCH" for p in pushes[1:])
    stated = {k: v for p in pushes for k, v in p.body.items()}  # the Session as the eMSP holds it now
    assert stated["status"] == "COMPLETED" and stated["kwh"] == 5 and stated["total_cost"] == {"excl_vat": 1.5, "incl_vat": 1.5}

    async def drained() -> bool:
        return (await cpo.partner(created["partnerId"]))["pushBacklog"] == 0

    await eventually(drained)
    assert Counter(p.body["id"] for p in emsp.pushes("cdrs")) == {cdr["id"]: 1}


async def test_a_session_repriced_after_its_cdr_gets_a_credit_cdr_and_a_new_one(cpo: Cpo, emsp: Emsp):
    await cpo.registered_emsp(emsp)
    charging = await Charging.ready(cpo, emsp)
    await charging.started(tx=9)
    await charging.reading(9, 4000, 60)
    await charging.ended(9, 180)  # no meterStop: the last Register reading says 3 kWh, 0.90
    session_id = await session_id_of(emsp)
    [first] = await cdrs_of(emsp, session_id, 1)
    assert first["total_cost"] == {"excl_vat": 0.9, "incl_vat": 0.9}

    await charging.reading(9, 6000, 120)  # a reading that came late: 5 kWh, 1.50
    settlement = await charging.settlement(session_id, amount="1.50")
    first_again, credit, renewed = await cdrs_of(emsp, session_id, 3)

    assert first_again == first
    assert credit["credit"] is True and credit["credit_reference_id"] == first["id"] and credit["id"] == f"{first['id']}-C"
    assert credit["total_cost"] == {"excl_vat": -0.9, "incl_vat": -0.9}
    assert {k: v for k, v in credit.items() if k not in ("id", "credit", "credit_reference_id", "total_cost", "last_updated")} == {
        k: v for k, v in first.items() if k not in ("id", "total_cost", "last_updated")}
    assert renewed["id"] not in (first["id"], credit["id"]) and "credit" not in renewed and len(renewed["id"]) <= 36
    assert cents(renewed["total_cost"]["incl_vat"]) == Decimal(settlement["amount"]) and renewed["total_energy"] == 5

    status, body, _ = await emsp.call("GET", f"{cpo.url}/ocpi/2.2.1/cdrs?limit=500")
    assert status == 200
    assert [c["id"] for c in body["data"] if c["session_id"] == session_id] == [first["id"], credit["id"], renewed["id"]]


async def test_the_sender_interfaces_page_the_partners_sessions_and_cdrs(cpo: Cpo, emsp: Emsp):
    await cpo.registered_emsp(emsp)
    since = format_ts(datetime.now(UTC) - timedelta(seconds=1))
    charging = await Charging.ready(cpo, emsp)
    for tx in (21, 22, 23):
        await charging.started(tx)
        await charging.ended(tx, 60, meter_stop=2000)
    sessions = set()

    async def three_cdrs() -> bool:
        status, body, _ = await emsp.call("GET", f"{cpo.url}/ocpi/2.2.1/cdrs?date_from={since}")
        return status == 200 and len(body["data"]) == 3

    await eventually(three_cdrs, timeout=30)
    url = f"{cpo.url}/ocpi/2.2.1/sessions?date_from={since}&limit=2"
    while url:
        status, body, headers = await emsp.call("GET", url)
        assert status == 200 and body["status_code"] == 1000 and headers["X-Total-Count"] == "3" and headers["X-Limit"] == "2"
        sessions.update(s["id"] for s in body["data"])
        assert all(s["status"] == "COMPLETED" and s["cdr_token"]["uid"] == charging.uid for s in body["data"])
        url = headers.get("Link", "").partition("<")[2].partition(">")[0]
    assert len(sessions) == 3

    status, body, headers = await emsp.call("GET", f"{cpo.url}/ocpi/2.2.1/cdrs?date_from={since}&offset=1&limit=1")
    assert status == 200 and headers["X-Total-Count"] == "3" and len(body["data"]) == 1 and 'rel="next"' in headers["Link"]
    assert body["data"][0]["session_id"] in sessions

    # another partner sees none of them
    other = Emsp()
    await other.start()
    try:
        await cpo.registered_emsp(other)
        status, body, headers = await other.call("GET", f"{cpo.url}/ocpi/2.2.1/sessions?date_from={since}")
        assert status == 200 and body["data"] == [] and headers["X-Total-Count"] == "0"
    finally:
        await other.unregister()
        await other.close()


async def test_bad_requests_on_sessions_and_cdrs_are_ocpi_errors(cpo: Cpo, emsp: Emsp):
    await cpo.registered_emsp(emsp)
    for path in ("/ocpi/2.2.1/sessions", "/ocpi/2.2.1/sessions?date_from=yesterday", "/ocpi/2.2.1/cdrs?limit=0",
                 "/ocpi/2.2.1/cdrs?offset=-1", "/ocpi/2.2.1/cdrs?date_to=2026-13-01T00:00:00Z", "/ocpi/2.2.1/cdrs?limit=x",
                 "/ocpi/2.2.1/cdrs?date_from=%00"):
        status, body, _ = await emsp.call("GET", f"{cpo.url}{path}")
        assert (status, body["status_code"]) == (400, 2001), (path, body)
    status, body, _ = await emsp.call("GET", f"{cpo.url}/ocpi/2.2.1/cdrs/{uuid.uuid4()}")
    assert (status, body["status_code"]) == (404, 2000)
    status, body, _ = await emsp.call("POST", f"{cpo.url}/ocpi/2.2.1/cdrs", json={"id": "x"})
    assert status == 405 and body["status_code"] == 2000
    for token in ("not-a-token", ""):
        status, body, _ = await emsp.call("GET", f"{cpo.url}/ocpi/2.2.1/cdrs", token=token or " ")
        assert status == 401 and body["status_code"] == 2000
    status, body, _ = await emsp.call("GET", f"{cpo.url}/ocpi/2.2.1/sessions?date_from=2026-01-01T00:00:00Z",
                                      headers={"OCPI-to-country-code": "BE", "OCPI-to-party-id": "XXX"})
    assert (status, body["status_code"]) == (400, 2001)
