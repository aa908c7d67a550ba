"""Site power limits end to end (CONTRACT section 13): real OCPP 1.6J charge points connected to
the CPMS's own gateway, the CPMS sharing a 22 kW site among their sessions. Each charger keeps the
profiles it receives; at every change the shares in force on the site are added up, and the sum
never passes the limit: while sessions start and end, while a charger ignores its profile, while
the limit is lowered."""
from __future__ import annotations

from decimal import Decimal

from tests.load.chargers import LoadCharger, SiteWatch, plugged
from tests.load.conftest import CAP_W, SECRET, limited_site, site_load
from tests.support import Api, eventually, unique_id

AMPS_STEP_W = 69  # 0.1 A on three phases at 230 V: what rounding a limit in A down may cost


def settled_at(api: Api, site_id: str, expected: dict[LoadCharger, int], *, flagged: set[str] = frozenset()):
    """A probe: the CPMS decided `expected` (W per charger's session), no profile waits for an
    answer, each charger holds its share (to the rounding of its unit), and the CPMS's own
    accounting (a flagged charger at its maximum) stays within the limit."""

    async def probe() -> dict | None:
        load = await site_load(api, site_id)
        shares = {s["chargePointId"]: s["shareW"] for s in load["sessions"]}
        if None in shares.values() or any(p["status"] == "Pending" for p in load["profiles"]):
            return None
        wanted = {c.id: w for c, w in expected.items()} | {cp: CAP_W for cp in flagged if cp in shares}
        if shares.keys() != wanted.keys() or any(abs(shares[cp] - w) > 1 for cp, w in wanted.items()):  # the last watt to either
            return None
        if not all(0 <= shares[c.id] - c.share_w(1) < AMPS_STEP_W for c in expected):
            return None
        assert sum(shares.values()) <= int(float(load["maxPowerKw"]) * 1000)
        return load

    return probe


async def test_three_sessions_share_a_22_kw_site_and_the_sum_in_force_never_passes_the_limit(cpms_with_gateway):
    api, url = cpms_with_gateway
    ids = [unique_id("LOAD") for _ in range(3)]
    site_id = await limited_site(api, "22", ids)
    watch = SiteWatch(limit_w=22_000, cap_w=CAP_W)
    async with plugged(url, ids[0], SECRET, watch) as a, plugged(url, ids[1], SECRET, watch, rate_unit="Current") as b, \
            plugged(url, ids[2], SECRET, watch, ignores_profiles=True) as c:
        # Fail-safe at boot: the limit divided by the site's three connectors, in each charger's unit.
        async def fail_safes() -> bool:
            return all(any(p["charging_profile_purpose"] == "TxDefaultProfile" for p in x.received) for x in (a, b, c))

        await eventually(fail_safes, timeout=30)
        for charger, unit, limit in ((a, "W", "7333"), (b, "A", "10.6"), (c, "W", "7333")):
            first = next(p for p in charger.received if p["charging_profile_purpose"] == "TxDefaultProfile")
            assert first["connectorId"] == 0 and first["charging_schedule"]["charging_rate_unit"] == unit
            assert Decimal(str(first["charging_schedule"]["charging_schedule_period"][0]["limit"])) == Decimal(limit)

        # One session: it may take its connector's 11 kW; the idle connectors keep what is left.
        await a.start_session()
        await eventually(settled_at(api, site_id, {a: 11_000}), timeout=30)
        # Three sessions: equal shares; each newcomer started under its charger's default (what the
        # others left) and was raised only after the others were lowered.
        await b.start_session()
        await eventually(settled_at(api, site_id, {a: 11_000, b: 11_000}), timeout=30)
        await c.start_session()
        load = await eventually(settled_at(api, site_id, {a: 7_334, b: 7_333, c: 7_333}), timeout=30)
        tx_profiles = [p for p in load["profiles"] if p["purpose"] == "TxProfile" and p["chargePointId"] == b.id]
        assert tx_profiles[0]["rateUnit"] == "A" and tx_profiles[0]["limit"] == "10.6" and tx_profiles[0]["status"] == "Accepted"

        # What a session does not draw goes to the others: A's car takes 2 kW.
        await a.report(watts=2_000)
        await eventually(settled_at(api, site_id, {a: 3_000, b: 9_500, c: 9_500}), timeout=30)

        # C answers Accepted and keeps drawing 11 kW: after two readings it is flagged and counted at
        # its maximum; A and B share the rest.
        assert await c.report() == 11_000 and await c.report() == 11_000
        load = await eventually(settled_at(api, site_id, {a: 3_000, b: 8_000}, flagged={c.id}), timeout=30)
        assert {x["chargePointId"]: x["flagged"] for x in load["chargers"]} == {a.id: False, b.id: False, c.id: True}
        assert next(x for x in load["chargers"] if x["chargePointId"] == c.id)["flagReason"] == "drew over its share for two readings"

        # A's session ends: B may take its connector's maximum, within what C leaves.
        await a.stop_session()
        await eventually(settled_at(api, site_id, {b: 11_000}, flagged={c.id}), timeout=30)

        # The limit is lowered while charging: B is lowered to what is left beside C's maximum.
        status, body = await api.admin("PUT", f"/v1/sites/{site_id}", {"name": "Depot with a 22 kW connection", "maxPowerKw": 16})
        assert status == 200, body
        load = await eventually(settled_at(api, site_id, {b: 5_000}, flagged={c.id}), timeout=30)
        assert load["maxPowerKw"] == "16"
        watch.limit_w = 16_000
        watch.check()
        await b.stop_session()
        await c.stop_session()

    assert watch.over == [], f"the shares in force passed the limit: {watch.over}"
    assert 22_000 - AMPS_STEP_W < watch.highest_w <= 22_000  # the limit was used in full (to B's rounding in A), never more
