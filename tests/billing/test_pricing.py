"""Pricing finalized sessions: exact amounts, the tariff in force at the start, sessions that
cannot be priced, duplicates, re-finalizations and what billing tells the sessions service."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.billing.conftest import after
from tests.support import eventually


async def test_030_usd_for_12345_wh_is_370_with_a_pending_settlement(billing, domain_tap):
    site, tariff, cp = await billing.priced_site("0.30", "USD", wallet="rPAYOUT")
    session_id = await billing.finalize(cp, energy_wh=12345, started_at=after(tariff))
    settlement = await billing.wait_settlement(session_id)
    assert settlement["amount"] == "3.70" and settlement["currency"] == "USD"
    assert settlement["status"] == "Pending" and settlement["wallet"] == "rPAYOUT"
    assert settlement["siteId"] == site["siteId"] and settlement["chargePointId"] == cp
    assert settlement["chain"] is None and settlement["txHash"] is None and settlement["error"] is None
    status, same = await billing.api.admin("GET", f"/v1/settlements/{settlement['settlementId']}")
    assert status == 200 and same == settlement

    priced = await domain_tap.wait_for("session.priced", sessionId=session_id)
    figures, location = priced[0].pop("figures"), priced[0].pop("location")
    assert priced == [{
        "sessionId": session_id, "tariffId": tariff["tariffId"], "costAmount": "3.70", "costCurrency": "USD",
        "pricedAt": priced[0]["pricedAt"], "revision": 1, "energyWh": "12345",
        "costBreakdown": [{"type": "ENERGY", "volume": "12.345", "unit": "kWh", "amountExclVat": "3.7035", "vatPercent": None,
                           "amountInclVat": "3.7035"}],
        "siteId": site["siteId"], "partnerToken": None,
    }]
    # What an OCPI CDR of the session states: the settlement's amount, to the cent
    assert figures["total_cost"] == figures["total_energy_cost"] == {"excl_vat": "3.70", "incl_vat": "3.70"}
    assert (figures["currency"], figures["total_energy"], figures["total_parking_time"]) == ("USD", "12.345", "0")
    assert figures["total_time_cost"] == figures["total_parking_cost"] == {"excl_vat": "0.00", "incl_vat": "0.00"}
    assert [p["dimensions"][0] for p in figures["charging_periods"]] == [{"type": "ENERGY", "volume": "12.345"}]
    assert figures["charging_periods"][0]["tariff_id"] == figures["tariff"]["id"] == tariff["tariffId"]
    assert location["id"] == site["siteId"] and location["name"] == site["name"]
    created = await domain_tap.wait_for("settlement.", sessionId=session_id)
    assert created[0]["status"] == "Pending" and created[0]["settlementId"] == settlement["settlementId"]


@pytest.mark.parametrize(("price", "currency", "energy_wh", "amount"), [
    ("25", "JPY", 12345, "309"),         # 308.625 -> 309: no decimals for yen
    ("1", "JPY", 2500, "3"),             # 2.5 -> 3 (half-up, not half-even)
    ("1", "JPY", "2499.999", "2"),
    ("1.00", "USD", 25, "0.03"),         # 0.025 -> 0.03
    ("1.00", "USD", 5, "0.01"),          # 0.005 -> 0.01
    ("1.00", "USD", "4.999", "0.00"),    # 0.004999 -> 0.00
    ("1.005", "USD", 1000, "1.01"),      # a binary float would make 1.00499... of it
    ("0.30", "USD", 0, "0.00"),
    ("1", "KWD", "0.5", "0.001"),        # three decimals
    ("0.123456", "EUR", "123456789", "15241.48"),  # 15241.481342784 exactly, then rounded
])
async def test_cost_is_exact_and_rounded_half_up_to_the_minor_unit(billing, price, currency, energy_wh, amount):
    _, tariff, cp = await billing.priced_site(price, currency)
    session_id = await billing.finalize(cp, energy_wh=energy_wh, started_at=after(tariff))
    settlement = await billing.wait_settlement(session_id)
    assert (settlement["amount"], settlement["currency"]) == (amount, currency)


async def test_the_tariff_in_force_at_the_start_applies_never_a_later_one(billing):
    site, first, cp = await billing.priced_site("0.30")
    second = await billing.tariff(site["siteId"], "0.50")
    between = datetime.fromisoformat(first["createdAt"]) + (datetime.fromisoformat(second["createdAt"]) - datetime.fromisoformat(first["createdAt"])) / 2

    before_any = await billing.finalize(cp, energy_wh=10000, started_at=datetime.fromisoformat(first["createdAt"]) - timedelta(seconds=1))
    during_first = await billing.finalize(cp, energy_wh=10000, started_at=between)
    during_second = await billing.finalize(cp, energy_wh=10000, started_at=after(second))

    assert (await billing.wait_settlement(during_first))["amount"] == "3.00"
    assert (await billing.wait_settlement(during_second))["amount"] == "5.00"
    await billing.wait_applied(before_any)
    assert await billing.settlement_of(before_any) is None

    # A re-finalization after yet another tariff still prices at the tariff of the start.
    await billing.tariff(site["siteId"], "0.90")
    await billing.finalize(cp, energy_wh=20000, started_at=between, session_id=during_first, revision=2)
    assert (await billing.wait_settlement(during_first, amount="6.00"))["amount"] == "6.00"


@pytest.mark.parametrize("case", ["no site", "no tariff", "missing energy", "no start"])
async def test_a_session_that_cannot_be_priced_gets_no_settlement(billing, api, case):
    site, tariff, cp = await billing.priced_site()
    energy, started = 12345, after(tariff)
    if case == "no site":
        cp = "CP-nowhere-" + cp
    elif case == "no tariff":
        bare = await billing.site()
        cp = await billing.charger_at(bare["siteId"])
    elif case == "missing energy":
        energy = None
    else:
        started = None
    session_id = await billing.finalize(cp, energy_wh=energy, started_at=started)
    await billing.wait_applied(session_id)
    assert await billing.settlement_of(session_id) is None
    reason = {"no site": "no_site", "no tariff": "no_tariff", "missing energy": "missing_energy", "no start": "no_start"}[case]
    _, metrics = await api.anonymous("GET", "/metrics")
    assert f'cpms_billing_sessions_not_priced_total{{reason="{reason}"}}' in metrics


async def test_duplicate_finalizations_make_one_settlement(billing, api):
    _, tariff, cp = await billing.priced_site()
    session_id = await billing.finalize(cp, energy_wh=12345, started_at=after(tariff), message_id="dup-" + cp)
    await billing.finalize(cp, energy_wh=12345, started_at=after(tariff), session_id=session_id, message_id="dup-" + cp)
    await billing.finalize(cp, energy_wh=99999, started_at=after(tariff), session_id=session_id)  # same revision, new message id
    await billing.wait_applied(session_id)
    settlement = await billing.wait_settlement(session_id)
    assert settlement["amount"] == "3.70"
    status, body = await api.admin("GET", f"/v1/settlements?chargePointId={cp}")
    assert status == 200 and len(body["items"]) == 1


async def test_a_refinalization_reprices_while_pending_and_never_after_submission(billing, domain_tap):
    _, tariff, cp = await billing.priced_site()
    started = after(tariff)
    session_id = await billing.finalize(cp, energy_wh=10000, started_at=started)
    first = await billing.wait_settlement(session_id, amount="3.00")

    await billing.finalize(cp, energy_wh=20000, started_at=started, session_id=session_id, revision=2)
    repriced = await billing.wait_settlement(session_id, amount="6.00")
    assert repriced["settlementId"] == first["settlementId"] and repriced["status"] == "Pending"
    await domain_tap.wait_for("session.priced", sessionId=session_id, revision=2, costAmount="6.00")

    # An older revision delivered late changes nothing.
    await billing.finalize(cp, energy_wh=1000, started_at=started, session_id=session_id, revision=1)
    status, _ = await billing.transition(first["settlementId"], "submitted", {"chain": "XRPL", "txHash": "ABC"})
    assert status == 200
    await billing.finalize(cp, energy_wh=40000, started_at=started, session_id=session_id, revision=3)
    await billing.wait_applied(session_id, revision=3)
    settled = await billing.settlement_of(session_id)
    assert settled["amount"] == "6.00" and settled["status"] == "Submitted"
    assert domain_tap.of("session.priced", sessionId=session_id, revision=3) == []


async def test_revisions_delivered_out_of_order_converge_on_the_highest(billing):
    _, tariff, cp = await billing.priced_site()
    started = after(tariff)
    session_id = await billing.finalize(cp, energy_wh=30000, started_at=started, revision=3)
    await billing.finalize(cp, energy_wh=10000, started_at=started, session_id=session_id, revision=1)
    await billing.finalize(cp, energy_wh=20000, started_at=started, session_id=session_id, revision=2)
    await billing.wait_applied(session_id, revision=3)
    await billing.finalize(cp, energy_wh=20000, started_at=started, session_id=session_id, revision=2)
    assert (await billing.wait_settlement(session_id))["amount"] == "9.00"


async def test_a_pending_settlement_whose_session_loses_its_energy_fails_with_the_reason(billing):
    _, tariff, cp = await billing.priced_site()
    session_id = await billing.finalize(cp, energy_wh=10000, started_at=after(tariff))
    await billing.wait_settlement(session_id, status="Pending")
    await billing.finalize(cp, energy_wh=None, started_at=after(tariff), session_id=session_id, revision=2)
    failed = await billing.wait_settlement(session_id, status="Failed")
    assert "Missing" in failed["error"] and failed["amount"] == "3.00"


async def test_the_wallet_is_the_sites_at_pricing_time(billing, api):
    site, tariff, cp = await billing.priced_site(wallet=None)
    session_id = await billing.finalize(cp, energy_wh=1000, started_at=after(tariff))
    assert (await billing.wait_settlement(session_id))["wallet"] is None
    await api.admin("POST", f"/v1/sites/{site['siteId']}/wallet", {"wallet": "rLATER"})
    later = await billing.finalize(cp, energy_wh=1000, started_at=after(tariff))
    assert (await billing.wait_settlement(later))["wallet"] == "rLATER"


async def test_a_registration_naming_a_site_assigns_the_charger(billing, api, domain_tap):
    site = await billing.site()
    tariff = await billing.tariff(site["siteId"], "0.40")
    cp = "CP-reg-" + site["siteId"][:8]
    status, body = await api.admin("POST", "/v1/chargers", {"chargePointId": cp, "secret": "a-long-secret", "siteId": site["siteId"]})
    assert status == 201, body
    await domain_tap.wait_for("charger.site-assigned", chargePointId=cp, siteId=site["siteId"])
    session_id = await billing.finalize(cp, energy_wh=5000, started_at=after(tariff))
    assert (await billing.wait_settlement(session_id))["amount"] == "2.00"


async def test_priced_sessions_and_confirmed_money_are_counted(billing, api):
    _, tariff, cp = await billing.priced_site("1", "JPY")
    session_id = await billing.finalize(cp, energy_wh=7000, started_at=after(tariff))
    settlement = await billing.wait_settlement(session_id)
    _, before = await api.anonymous("GET", "/metrics")
    await billing.transition(settlement["settlementId"], "submitted", {"chain": "XRPL", "txHash": "H1"})
    await billing.transition(settlement["settlementId"], "confirmed")
    _, metrics = await api.anonymous("GET", "/metrics")
    assert _sample(metrics, 'cpms_billing_amount_settled_minor_units_total{currency="JPY"}') == _sample(before, 'cpms_billing_amount_settled_minor_units_total{currency="JPY"}') + 7
    assert _sample(metrics, "cpms_billing_sessions_priced_total") >= 1
    assert _sample(metrics, 'cpms_billing_settlement_transitions_total{result="applied",to="Confirmed"}') >= 1

    async def gauge_counts_it():
        _, text = await api.anonymous("GET", "/metrics")
        return _sample(text, 'cpms_billing_settlements{status="Confirmed"}') >= 1
    await eventually(gauge_counts_it)


def _sample(metrics: str, name: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
