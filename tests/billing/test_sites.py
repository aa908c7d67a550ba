"""Sites, tariffs, payout wallets and charger site assignment through the HTTP API."""
from __future__ import annotations

import uuid

import pytest

from tests.support import eventually, unique_id

UNKNOWN = str(uuid.UUID(int=0))


SITE_FIELDS = {"siteId", "name", "timeZone", "address", "city", "postalCode", "country", "coordinates", "publish", "maxPowerKw",
               "payoutWallet", "createdAt"}
BERLIN = {"name": "Charging hub Mitte", "timeZone": "Europe/Berlin", "address": "Alexanderplatz 1", "city": "Berlin",
          "postalCode": "10178", "country": "DEU", "coordinates": {"latitude": "52.521918", "longitude": "13.413215"},
          "publish": False, "maxPowerKw": 150}


async def test_a_site_is_created_listed_and_read(api):
    status, site = await api.admin("POST", "/v1/sites", {"name": "  Harbour car park  "})
    assert status == 201
    assert set(site) == SITE_FIELDS
    assert site["name"] == "Harbour car park" and site["payoutWallet"] is None and site["createdAt"].endswith("Z")
    # A site given nothing more: its times of day are UTC's, it is published, it has no location and no limit.
    assert (site["timeZone"], site["publish"]) == ("UTC", True)
    assert all(site[f] is None for f in ("address", "city", "postalCode", "country", "coordinates", "maxPowerKw"))
    assert await api.admin("GET", f"/v1/sites/{site['siteId']}") == (200, site)
    status, listed = await api.admin("GET", "/v1/sites?limit=500")
    assert status == 200 and site in listed["items"]


async def test_sites_page_by_cursor(api):
    made = [(await api.admin("POST", "/v1/sites", {"name": f"Page {i}"}))[1]["siteId"] for i in range(3)]
    seen, cursor = [], None
    while True:
        status, body = await api.admin("GET", "/v1/sites?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200 and len(body["items"]) <= 2
        seen += [s["siteId"] for s in body["items"]]
        if (cursor := body["nextCursor"]) is None:
            break
    assert len(seen) == len(set(seen)) and seen[:3] == made[::-1]


async def test_the_wallet_is_set_on_the_site(api, billing):
    site = await billing.site()
    status, updated = await api.admin("POST", f"/v1/sites/{site['siteId']}/wallet", {"wallet": "rN7n7otQDd6FczFgLdSqtcsAUxDkw6fzRH"})
    assert status == 200 and updated == {**site, "payoutWallet": "rN7n7otQDd6FczFgLdSqtcsAUxDkw6fzRH"}
    assert (await api.admin("GET", f"/v1/sites/{site['siteId']}"))[1] == updated


@pytest.mark.parametrize("body", [{}, {"wallet": ""}, {"wallet": "r abc"}, {"wallet": " rabc"}, {"wallet": 7}, {"wallet": "r", "x": 1}])
async def test_a_bad_wallet_is_400_and_changes_nothing(api, billing, body):
    site = await billing.site(wallet="rBEFORE")
    status, problem = await api.admin("POST", f"/v1/sites/{site['siteId']}/wallet", body)
    assert status == 400 and problem["errors"]
    assert (await api.admin("GET", f"/v1/sites/{site['siteId']}"))[1]["payoutWallet"] == "rBEFORE"


async def test_a_new_tariff_deactivates_the_previous_and_keeps_history(api, billing):
    site = await billing.site()
    status, first = await api.admin("POST", f"/v1/sites/{site['siteId']}/tariffs", data=b'{"pricePerKwh": 0.30}',
                                    headers={"Content-Type": "application/json"})  # a JSON number, default currency
    assert status == 201
    assert set(first) == {"tariffId", "siteId", "pricePerKwh", "currency", "isActive", "createdAt", "ocpi"}
    assert (first["pricePerKwh"], first["currency"], first["isActive"]) == ("0.30", "USD", True)
    second = await billing.tariff(site["siteId"], "45", "JPY")
    status, history = await api.admin("GET", f"/v1/sites/{site['siteId']}/tariffs")
    assert status == 200
    assert [(t["tariffId"], t["isActive"]) for t in history["items"]] == [(second["tariffId"], True), (first["tariffId"], False)]
    assert history["nextCursor"] is None
    status, page = await api.admin("GET", f"/v1/sites/{site['siteId']}/tariffs?limit=1")
    assert [t["tariffId"] for t in page["items"]] == [second["tariffId"]] and page["nextCursor"]
    status, rest = await api.admin("GET", f"/v1/sites/{site['siteId']}/tariffs?limit=1&cursor={page['nextCursor']}")
    assert [t["tariffId"] for t in rest["items"]] == [first["tariffId"]] and rest["nextCursor"] is None


async def test_the_currency_defaults_to_usd(billing):
    site = await billing.site()
    assert (await billing.tariff(site["siteId"], "0.25", currency=None))["currency"] == "USD"


async def test_a_json_number_price_is_read_exactly(api, billing):
    site = await billing.site()
    raw = b'{"pricePerKwh": 1.10, "currency": "EUR"}'  # a float would come back as "1.1"
    status, tariff = await api.admin("POST", f"/v1/sites/{site['siteId']}/tariffs", data=raw,
                                     headers={"Content-Type": "application/json"})
    assert status == 201 and tariff["pricePerKwh"] == "1.10"
    status, tariff = await api.admin("POST", f"/v1/sites/{site['siteId']}/tariffs", data=b'{"pricePerKwh": 2.5e-1}',
                                     headers={"Content-Type": "application/json"})
    assert status == 201 and tariff["pricePerKwh"] == "0.25"


@pytest.mark.parametrize("body", [
    {"pricePerKwh": 0},
    {"pricePerKwh": "0.00"},
    {"pricePerKwh": -0.30},
    {"pricePerKwh": "abc"},
    {"pricePerKwh": " 0.30"},
    {"pricePerKwh": "NaN"},
    {"pricePerKwh": "Infinity"},
    {"pricePerKwh": True},
    {"pricePerKwh": None},
    {"pricePerKwh": [0.3]},
    {"pricePerKwh": "0.1234567"},   # more than 6 decimals
    {"pricePerKwh": "1000.01"},     # above CPMS_MAX_PRICE_PER_KWH
    {},
    {"pricePerKwh": "0.30", "currency": "usd"},
    {"pricePerKwh": "0.30", "currency": "EURO"},
    {"pricePerKwh": "0.30", "currency": "ABC"},
    {"pricePerKwh": "0.30", "currency": 840},
    {"pricePerKwh": "0.30", "validFrom": "2026-01-01T00:00:00Z"},
])
async def test_a_bad_tariff_is_400_and_changes_nothing(api, billing, body):
    site = await billing.site()
    before = await billing.tariff(site["siteId"], "0.30")
    status, problem = await api.admin("POST", f"/v1/sites/{site['siteId']}/tariffs", body)
    assert status == 400, problem
    assert problem["errors"] and all(e["loc"] and e["msg"] for e in problem["errors"])
    assert (await api.admin("GET", f"/v1/sites/{site['siteId']}/tariffs"))[1]["items"] == [before]


@pytest.mark.parametrize(("raw", "content_type", "expected"), [
    (b'{"pricePerKwh": NaN}', "application/json", 400),
    (b'{"pricePerKwh": 1e400}', "application/json", 400),
    (b'{"pricePerKwh": 1e-400}', "application/json", 400),
    (b'{"pricePerKwh": 0.3', "application/json", 400),
    (b'\xff\xfe', "application/json", 400),
    (b'pricePerKwh=0.3', "application/x-www-form-urlencoded", 415),
])
async def test_a_tariff_body_that_is_not_json_is_refused(api, billing, raw, content_type, expected):
    site = await billing.site()
    status, problem = await api.admin("POST", f"/v1/sites/{site['siteId']}/tariffs", data=raw, headers={"Content-Type": content_type})
    assert status == expected and problem["status"] == expected


async def test_unknown_sites_are_404(api):
    for site_id in (UNKNOWN, "not-a-uuid"):
        assert (await api.admin("GET", f"/v1/sites/{site_id}"))[0] == 404
        assert (await api.admin("GET", f"/v1/sites/{site_id}/tariffs"))[0] == 404
        assert (await api.admin("POST", f"/v1/sites/{site_id}/tariffs", {"pricePerKwh": "0.30"}))[0] == 404
        assert (await api.admin("POST", f"/v1/sites/{site_id}/wallet", {"wallet": "rX"}))[0] == 404
    status, problem = await api.admin("PUT", f"/v1/chargers/{unique_id()}/site", {"siteId": UNKNOWN})
    assert status == 404 and problem["title"] == "Site not found"


async def test_a_charger_is_assigned_to_a_site_even_before_billing_heard_of_it(api, billing, domain_tap):
    site, other = await billing.site(), await billing.site()
    cp = unique_id()
    status, body = await api.admin("PUT", f"/v1/chargers/{cp}/site", {"siteId": site["siteId"]})
    assert status == 200 and body["chargePointId"] == cp and body["siteId"] == site["siteId"]
    status, body = await api.admin("PUT", f"/v1/chargers/{cp}/site", {"siteId": other["siteId"]})
    assert status == 200 and body["siteId"] == other["siteId"]
    await domain_tap.wait_for("charger.site-assigned", chargePointId=cp, siteId=other["siteId"])
    assert domain_tap.of("charger.site-assigned", chargePointId=cp, siteId=site["siteId"])


@pytest.mark.parametrize(("cp", "body"), [
    ("CP 1", {"siteId": UNKNOWN}),
    ("x" * 65, {"siteId": UNKNOWN}),
    ("CP-1", {"siteId": "nope"}),
    ("CP-1", {}),
])
async def test_a_bad_assignment_is_400(api, cp, body):
    status, problem = await api.admin("PUT", f"/v1/chargers/{cp}/site", body)
    assert status == 400 and problem["errors"]


async def test_billing_routes_need_the_admin_token(api):
    assert (await api.anonymous("GET", "/v1/settlements"))[0] == 401
    assert (await api.gateway("POST", "/v1/sites", {"name": "x"}))[0] == 401


async def test_prices_show_at_least_the_currencys_minor_unit_digits(api, billing):
    site = await billing.site()
    for sent, currency, shown in ((0.3, "USD", "0.30"), ("0.3456", "USD", "0.3456"), (25, "JPY", "25"),
                                  ("0.5", "KWD", "0.500"), ("2", "EUR", "2.00")):
        status, tariff = await api.admin("POST", f"/v1/sites/{site['siteId']}/tariffs", {"pricePerKwh": sent, "currency": currency})
        assert status == 201 and tariff["pricePerKwh"] == shown, (sent, tariff)
    _, history = await api.admin("GET", f"/v1/sites/{site['siteId']}/tariffs")
    assert [t["pricePerKwh"] for t in history["items"]] == ["2.00", "0.500", "25", "0.3456", "0.30"]


async def test_a_site_is_created_with_its_time_zone_location_and_grid_limit(api):
    status, site = await api.admin("POST", "/v1/sites", BERLIN)
    assert status == 201, site
    assert {k: site[k] for k in BERLIN} == {**BERLIN, "maxPowerKw": "150"}  # a decimal string, as every decimal shown
    assert await api.admin("GET", f"/v1/sites/{site['siteId']}") == (200, site)


async def test_put_replaces_a_sites_own_fields_and_keeps_its_wallet(api, billing):
    site = await billing.site("Depot", wallet="rKEEP")
    status, replaced = await api.admin("PUT", f"/v1/sites/{site['siteId']}", {**BERLIN, "maxPowerKw": "22.5"})
    assert status == 200, replaced
    assert replaced == {**site, **BERLIN, "maxPowerKw": "22.5"}  # same id, wallet and createdAt
    assert (await api.admin("GET", f"/v1/sites/{site['siteId']}"))[1] == replaced  # read your writes
    # A PUT is the whole of the site's own fields: what it leaves out takes its default again.
    status, renamed = await api.admin("PUT", f"/v1/sites/{site['siteId']}", {"name": "Depot East"})
    assert status == 200 and renamed == {**site, "name": "Depot East"}


async def test_a_put_is_in_the_audit_trail_with_the_site_before_and_after(api, billing):
    site = await billing.site("Audited")
    assert (await api.admin("PUT", f"/v1/sites/{site['siteId']}", {"name": "Audited", "timeZone": "Asia/Tokyo"}))[0] == 200

    async def trail():
        _, body = await api.admin("GET", f"/v1/audit?entity=site&entityId={site['siteId']}")
        return [e for e in body["items"] if e["method"] == "PUT"] or None

    [entry] = await eventually(trail)
    assert (entry["actor"], entry["path"]) == ("admin", f"/v1/sites/{site['siteId']}")
    assert (entry["before"]["timeZone"], entry["after"]["timeZone"]) == ("UTC", "Asia/Tokyo")


@pytest.mark.parametrize(("change", "field"), [
    ({"timeZone": "Mars/Olympus_Mons"}, "timeZone"),
    ({"timeZone": "europe/berlin"}, "timeZone"),  # IANA names are spelled as IANA spells them
    ({"timeZone": "+01:00"}, "timeZone"),
    ({"timeZone": ""}, "timeZone"),
    ({"timeZone": None}, "timeZone"),
    ({"country": "DE"}, "country"),
    ({"country": "deu"}, "country"),
    ({"country": "XYZ"}, "country"),
    ({"coordinates": {"latitude": "91.000000", "longitude": "13.413215"}}, "latitude"),
    ({"coordinates": {"latitude": "52.521918", "longitude": "-180.500000"}}, "longitude"),
    ({"coordinates": {"latitude": "52.52", "longitude": "13.41"}}, "latitude"),  # OCPI writes 5 to 7 places
    ({"coordinates": {"latitude": 52.521918, "longitude": 13.413215}}, "latitude"),  # OCPI writes strings
    ({"coordinates": {"latitude": "52.521918"}}, "longitude"),
    ({"maxPowerKw": 0}, "maxPowerKw"),
    ({"maxPowerKw": "-11"}, "maxPowerKw"),
    ({"maxPowerKw": "0.0001"}, "maxPowerKw"),
    ({"maxPowerKw": "eleven"}, "maxPowerKw"),
    ({"maxPowerKw": True}, "maxPowerKw"),
    ({"address": "x" * 46}, "address"),
    ({"postalCode": "12345678901"}, "postalCode"),
    ({"publish": "yes"}, "publish"),
    ({"name": " "}, "name"),
    ({"payoutWallet": "rX"}, "payoutWallet"),  # the wallet has a route of its own
])
async def test_a_bad_site_is_a_400_naming_the_field_and_changes_nothing(api, billing, change, field):
    site = await billing.site("Unchanged")
    body = {**BERLIN, **change}
    for method, path in (("POST", "/v1/sites"), ("PUT", f"/v1/sites/{site['siteId']}")):
        status, problem = await api.admin(method, path, body)
        assert status == 400 and any(field in map(str, e["loc"]) for e in problem["errors"]), (method, problem)
    assert (await api.admin("GET", f"/v1/sites/{site['siteId']}"))[1] == site


async def test_put_on_an_unknown_site_is_404(api):
    for site_id in (UNKNOWN, "not-a-uuid"):
        status, problem = await api.admin("PUT", f"/v1/sites/{site_id}", BERLIN)
        assert status == 404 and problem["title"] == "Site not found"
