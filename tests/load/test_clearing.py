"""A charger no longer under a limit is not left throttled (CONTRACT section 13): when its site's
limit is removed, or it moves to a site without one, the CPMS clears the profiles it set there
(ClearChargingProfile, once) and shows those clearings with their outcomes; set a limit again and
the profiles go out again. A gateway that refuses the clearing does not make it loop."""
from __future__ import annotations

from tests.ingest import gateway_events as ev
from tests.load.chargers import SiteWatch, plugged
from tests.load.conftest import CAP_W, SECRET, limited_site, site_load
from tests.support import FakeGateway, eventually, unique_id

DEFAULT = {"id": 1_300_000, "connectorId": 0, "purpose": "TxDefaultProfile", "stackLevel": 1}
TX_ON_1 = {"id": 1_300_001, "connectorId": 1, "purpose": "TxProfile", "stackLevel": 1}
NAME = "Depot with a 22 kW connection"


def sets(charger, purpose: str) -> int:
    return sum(1 for p in charger.received if p["charging_profile_purpose"] == purpose)


def settled(load: dict) -> bool:
    return bool(load["profiles"]) and not any(p["status"] == "Pending" for p in load["profiles"])


def clearings_of(load: dict) -> list[tuple[str, int, str, str]]:
    return sorted((p["chargePointId"], p["connectorId"], p["purpose"], p["status"])
                  for p in load["profiles"] if p["action"] == "ClearChargingProfile")


async def test_a_removed_limit_clears_what_the_chargers_hold_once_and_a_new_limit_sends_profiles_again(cpms_with_gateway):
    api, url = cpms_with_gateway
    ids = sorted(unique_id("LOAD") for _ in range(2))
    site_id = await limited_site(api, "22", ids)
    watch = SiteWatch(limit_w=22_000, cap_w=CAP_W)
    async with plugged(url, ids[0], SECRET, watch) as a, plugged(url, ids[1], SECRET, watch) as b:
        await a.start_session()

        async def limited() -> bool:
            load = await site_load(api, site_id)
            return settled(load) and (1, "TxProfile") in a.profiles and (0, "TxDefaultProfile") in b.profiles

        await eventually(limited, timeout=30)
        status, body = await api.admin("PUT", f"/v1/sites/{site_id}", {"name": NAME, "maxPowerKw": None})
        assert status == 200, body

        async def cleared() -> dict | None:
            load = await site_load(api, site_id)
            return load if len(clearings_of(load)) == 3 and settled(load) and not a.profiles and not b.profiles else None

        load = await eventually(cleared, timeout=30)
        # Each profile it held, by the id, connector, purpose and stack level it was set with.
        assert sorted(a.clearings, key=lambda c: c["id"]) == [DEFAULT, TX_ON_1] and b.clearings == [DEFAULT]
        assert clearings_of(load) == [(a.id, 0, "TxDefaultProfile", "Accepted"), (a.id, 1, "TxProfile", "Accepted"),
                                      (b.id, 0, "TxDefaultProfile", "Accepted")]
        assert load["maxPowerKw"] is None and load["sessions"][0]["shareW"] is None
        assert all(p["limitW"] is None and p["limit"] is None for p in load["profiles"] if p["action"] == "ClearChargingProfile")
        assert a.drawn_w(1) == a.car_w  # unthrottled

        # A reboot (and a session) while the site has no limit: nothing to clear any more.
        await b.boot()
        await b.start_session()
        sets_before = {c.id: (sets(c, "TxProfile"), sets(c, "TxDefaultProfile")) for c in (a, b)}
        status, body = await api.admin("PUT", f"/v1/sites/{site_id}", {"name": NAME, "maxPowerKw": "16"})
        assert status == 200, body

        async def limited_again() -> dict | None:
            load = await site_load(api, site_id)
            shares = {s["chargePointId"]: s["shareW"] for s in load["sessions"]}
            return load if shares == {a.id: 8_000, b.id: 8_000} and settled(load) and a.share_w(1) == 8_000 \
                and b.share_w(1) == 8_000 else None

        load = await eventually(limited_again, timeout=30)
        watch.limit_w = 16_000  # from when the lowers were answered (unlimited, both drew their 11 kW)
        watch.check()
        for charger in (a, b):  # its session's profile and its default went out again, though it was never told 8 kW before
            assert sets(charger, "TxProfile") > sets_before[charger.id][0]
            assert sets(charger, "TxDefaultProfile") > sets_before[charger.id][1]
        assert len(a.clearings) == 2 and len(b.clearings) == 1  # cleared once, not at every round
        assert len(clearings_of(load)) == 3
        await a.stop_session()
        await b.stop_session()
    assert watch.over == []


async def test_no_profile_goes_to_a_charger_while_a_clearing_of_it_is_unanswered(cpms_with_gateway):
    """Commands to one charger may be delivered in any order: a profile sent while a clearing is on
    its way could reach the charger first and be wiped by it, leaving the charger unlimited while
    the CPMS counts it as limited."""
    api, url = cpms_with_gateway
    cp = unique_id("LOAD")
    site_id = await limited_site(api, "22", [cp])
    watch = SiteWatch(limit_w=22_000, cap_w=CAP_W)
    async with plugged(url, cp, SECRET, watch) as charger:
        await charger.start_session()
        async def limited() -> bool:
            return (1, "TxProfile") in charger.profiles and settled(await site_load(api, site_id))

        await eventually(limited, timeout=30)
        charger.clearings_answered.clear()
        status, body = await api.admin("PUT", f"/v1/sites/{site_id}", {"name": NAME, "maxPowerKw": None})
        assert status == 200, body
        async def clearing_held() -> bool:
            return bool(charger.clearings)

        await eventually(clearing_held, timeout=30)  # the first arrived, its answer held (the next waits behind it)

        # A limit again while the clearings are unanswered: the share is decided, and nothing goes out.
        status, body = await api.admin("PUT", f"/v1/sites/{site_id}", {"name": NAME, "maxPowerKw": "7"})
        assert status == 200, body

        async def decided() -> dict | None:
            load = await site_load(api, site_id)
            return load if [s["shareW"] for s in load["sessions"]] == [7_000] else None

        load = await eventually(decided, timeout=30)
        cleared_at = max(p["sentAt"] for p in load["profiles"] if p["action"] == "ClearChargingProfile")
        assert not [p for p in load["profiles"] if p["action"] == "SetChargingProfile" and p["sentAt"] > cleared_at]

        charger.clearings_answered.set()

        async def limited_again() -> dict | None:
            load = await site_load(api, site_id)
            return load if settled(load) and charger.share_w(1) == 7_000 else None

        load = await eventually(limited_again, timeout=30)
        answered_at = max(p["answeredAt"] for p in load["profiles"] if p["action"] == "ClearChargingProfile")
        later = [p for p in load["profiles"] if p["action"] == "SetChargingProfile" and p["sentAt"] > cleared_at]
        assert later and all(p["sentAt"] >= answered_at for p in later)
        await charger.stop_session()


async def test_a_charger_moved_to_a_site_without_a_limit_is_cleared_and_the_others_keep_theirs(cpms_with_gateway):
    api, url = cpms_with_gateway
    moving, staying = unique_id("LOAD"), unique_id("LOAD")
    site_id = await limited_site(api, "22", [moving, staying])
    status, elsewhere = await api.admin("POST", "/v1/sites", {"name": "A car park without a limit"})
    assert status == 201
    watch = SiteWatch(limit_w=22_000, cap_w=CAP_W)
    async with plugged(url, moving, SECRET, watch) as m, plugged(url, staying, SECRET, watch) as s:
        async def fail_safes() -> bool:
            return settled(await site_load(api, site_id)) and (0, "TxDefaultProfile") in m.profiles \
                and (0, "TxDefaultProfile") in s.profiles

        await eventually(fail_safes, timeout=30)
        status, body = await api.admin("PUT", f"/v1/chargers/{moving}/site", {"siteId": elsewhere["siteId"]})
        assert status == 200, body

        async def moved() -> dict | None:
            load = await site_load(api, site_id)
            return load if clearings_of(load) == [(moving, 0, "TxDefaultProfile", "Accepted")] and not m.profiles else None

        load = await eventually(moved, timeout=30)
        assert m.clearings == [DEFAULT] and s.clearings == []
        assert (0, "TxDefaultProfile") in s.profiles
        assert [c["chargePointId"] for c in load["chargers"]] == [staying]


async def test_a_gateway_that_refuses_the_clearing_is_not_asked_again(make_api):
    gateway = FakeGateway()  # Accepted for everything until told otherwise
    await gateway.start()
    try:
        api = await make_api(gateway_base_url=gateway.url)
        cp = unique_id("REF")
        site_id = await limited_site(api, "30", [cp])
        await api.send_events(ev.booted(cp), ev.status(cp, 1, "Available"))

        async def fail_safe_accepted() -> bool:
            load = await site_load(api, site_id)
            return [(p["purpose"], p["status"]) for p in load["profiles"]] == [("TxDefaultProfile", "Accepted")]

        await eventually(fail_safe_accepted, timeout=30)
        gateway.answer(400, {"error": "unsupported command type"})
        status, body = await api.admin("PUT", f"/v1/sites/{site_id}", {"name": NAME, "maxPowerKw": None})
        assert status == 200, body

        async def refused() -> dict | None:
            load = await site_load(api, site_id)
            return load if clearings_of(load) == [(cp, 0, "TxDefaultProfile", "Rejected")] else None

        load = await eventually(refused, timeout=30)
        clearing = next(p for p in load["profiles"] if p["action"] == "ClearChargingProfile")
        assert clearing["error"].startswith("gateway refused the command (400)")
        assert [c["payload"] for c in gateway.calls if c["type"] == "ClearChargingProfile"] == [
            {"id": 1_300_000, "connectorId": 0, "chargingProfilePurpose": "TxDefaultProfile", "stackLevel": 1}]
        assert not load["chargers"][0]["flagged"]  # a clearing refused says nothing of the shares
        _, metrics = await api.anonymous("GET", "/metrics")
        assert 'cpms_load_profiles_total{action="ClearChargingProfile",outcome="Rejected"} 1.0' in metrics

        # It boots again, and a limit comes back: its fail-safe goes out, the clearing is not repeated.
        await api.send_events(ev.booted(cp, ts="2026-11-25T11:00:00Z"))
        status, body = await api.admin("PUT", f"/v1/sites/{site_id}", {"name": NAME, "maxPowerKw": "30"})
        assert status == 200, body

        async def limited_again() -> bool:
            load = await site_load(api, site_id)
            defaults = [p["status"] for p in load["profiles"] if p["action"] == "SetChargingProfile"]
            return defaults == ["Accepted", "Accepted"]

        await eventually(limited_again, timeout=30)
        assert sum(1 for c in gateway.calls if c["type"] == "ClearChargingProfile") == 1
    finally:
        await gateway.close()
