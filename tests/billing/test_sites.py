"""Sites, tariffs, payout wallets and charger site assignment through the HTTP API."""
from __future__ import annotations

import uuid

import pytest

from tests.support import unique_id

UNKNOWN = str(uuid.UUID(int=0))


async def test_a_site_is_created_listed_and_read(api):
    status, site = await api.admin("POST", "/v1/sites", {"name": "  Harbour car park  "})
    assert status == 201
    assert set(site) == {"siteId", "name", "payoutWallet", "createdAt"}
    assert site["name"] == "Harbour car park" and site["payoutWallet"] is None and site["createdAt"].endswith("Z")
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
