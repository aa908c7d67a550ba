"""Chargers a site's limit cannot rely on (CONTRACT section 13): one that rejects its profile, and
one behind a gateway that does not deliver SetChargingProfile (the reference gateway). Each is
flagged on the site and counted at its maximum; the others share the rest. And the load view's
answers to what cannot be shown."""
from __future__ import annotations

import uuid

from tests.ingest import gateway_events as ev
from tests.load.chargers import SiteWatch, plugged
from tests.load.conftest import CAP_W, SECRET, limited_site, site_load
from tests.support import FakeGateway, eventually, unique_id


async def test_a_charger_that_rejects_its_profile_is_flagged_and_counted_at_its_maximum(cpms_with_gateway):
    api, url = cpms_with_gateway
    rejecting, obeying = unique_id("LOAD"), unique_id("LOAD")
    site_id = await limited_site(api, "16", [rejecting, obeying])
    watch = SiteWatch(limit_w=16_000, cap_w=CAP_W)
    async with plugged(url, rejecting, SECRET, watch, answer="Rejected") as r, plugged(url, obeying, SECRET, watch) as o:
        async def flagged_at_boot() -> bool:  # before the first session: R refused its fail-safe, O holds what R leaves
            load = await site_load(api, site_id)
            return any(c["flagged"] for c in load["chargers"]) and not any(p["status"] == "Pending" for p in load["profiles"]) \
                and o.share_w(1) == 5_000

        await eventually(flagged_at_boot, timeout=30)
        await r.start_session()
        await o.start_session()

        async def shared_out() -> dict | None:
            load = await site_load(api, site_id)
            shares = {s["chargePointId"]: s["shareW"] for s in load["sessions"]}
            pending = any(p["status"] == "Pending" for p in load["profiles"])
            return load if shares == {rejecting: CAP_W, obeying: 5_000} and not pending and o.share_w(1) == 5_000 else None

        load = await eventually(shared_out, timeout=30)
        flags = {c["chargePointId"]: (c["flagged"], c["flagReason"]) for c in load["chargers"]}
        assert flags == {rejecting: (True, "refused a charging profile: the charger answered Rejected"), obeying: (False, None)}
        assert {p["status"] for p in load["profiles"] if p["chargePointId"] == rejecting} == {"Rejected"}
        assert r.profiles == {}  # it kept none
        await o.stop_session()
        await r.stop_session()
    assert watch.over == []  # the rejecting charger kept no profile: the watch counts it at its 11 kW too

    status, metrics = await api.anonymous("GET", "/metrics")
    assert status == 200 and 'cpms_load_profiles_total{action="SetChargingProfile",outcome="Rejected"}' in metrics
    assert 'cpms_load_chargers_flagged_total{reason="refused"}' in metrics


async def test_behind_a_gateway_without_smart_charging_a_charger_is_flagged_and_the_others_share_the_rest(make_api):
    gateway = FakeGateway()  # the reference gateway: 400 for every command it does not implement
    await gateway.start()
    try:
        for _ in range(20):
            gateway.answer(400, {"error": "unsupported command type"})
        api = await make_api(gateway_base_url=gateway.url)
        cp = unique_id("REF")
        site_id = await limited_site(api, "30", [cp])
        await api.send_events(ev.booted(cp), ev.status(cp, 1, "Available"), ev.started(cp, 7, connector=1))

        async def flagged() -> dict | None:
            load = await site_load(api, site_id)
            charger = load["chargers"][0] if load["chargers"] else {}
            return load if charger.get("flagged") and load["sessions"] and load["sessions"][0]["shareW"] == CAP_W else None

        load = await eventually(flagged, timeout=30)
        assert load["chargers"][0]["rateUnit"] == "W"  # GetConfiguration refused too: the default unit
        assert load["chargers"][0]["flagReason"].startswith("refused a charging profile: gateway refused the command (400)")
        assert {p["status"] for p in load["profiles"]} == {"Rejected"}  # sent before the first answer came, refused alike
        assert {c["type"] for c in gateway.calls} == {"GetConfiguration", "SetChargingProfile"}
    finally:
        await gateway.close()


async def test_the_load_of_a_site_that_does_not_exist_or_has_no_limit(api):
    status, problem = await api.admin("GET", f"/v1/sites/{uuid.uuid4()}/load")
    assert status == 404 and problem["status"] == 404
    assert (await api.admin("GET", "/v1/sites/not-a-site/load"))[0] in (400, 404)
    status, site = await api.admin("POST", "/v1/sites", {"name": "No limit"})
    assert status == 201
    status, load = await api.admin("GET", f"/v1/sites/{site['siteId']}/load")
    assert status == 200 and load["maxPowerKw"] is None and load["sessions"] == [] and load["profiles"] == []
    assert (await api.anonymous("GET", f"/v1/sites/{site['siteId']}/load"))[0] == 401
