"""The README's pricing and settlement walkthrough, end to end through the HTTP API alone:
gateway events in, a priced session and a settlement out, money moving, and a forced
re-finalize refused once it has."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.jsonutil import format_ts
from tests.support import eventually, unique_id


async def test_pricing_and_settlement_walkthrough(api, billing):
    cp = unique_id()
    assert (await api.admin("POST", "/v1/chargers", {"chargePointId": cp, "secret": "walkthrough-secret"}))[0] == 201
    site = await billing.site("Depot North", wallet="rN7n7otQDd6FczFgLdSqtcsAUxDkw6fzRH")
    tariff = await billing.tariff(site["siteId"], "0.30", "USD")
    assert (await api.admin("PUT", f"/v1/chargers/{cp}/site", {"siteId": site["siteId"]}))[0] == 200

    started = max(datetime.now(UTC), datetime.fromisoformat(tariff["createdAt"]) + timedelta(seconds=1))
    await api.send_events(
        {"type": "TransactionStarted", "chargePointId": cp, "connectorId": 1, "transactionId": 2, "idTag": "RFID-1", "ts": format_ts(started)},
        {"type": "TransactionEnded", "chargePointId": cp, "transactionId": 2, "meterStopWh": 12345,
         "ts": format_ts(started + timedelta(minutes=30))},
    )

    async def priced_session():
        _, body = await api.admin("GET", f"/v1/chargers/{cp}/sessions")
        items = body.get("items", []) if isinstance(body, dict) else []
        return items[0] if items and items[0]["costAmount"] is not None else None

    session = await eventually(priced_session)
    assert (session["costAmount"], session["costCurrency"], session["tariffId"]) == ("3.70", "USD", tariff["tariffId"])
    settlement = await billing.wait_settlement(session["sessionId"])
    assert (settlement["amount"], settlement["status"], settlement["wallet"]) == ("3.70", "Pending", "rN7n7otQDd6FczFgLdSqtcsAUxDkw6fzRH")

    tx = {"chain": "XRPL", "txHash": "E3FE6EA3D48F0C2B639448020EA4F03D4F4F8FFDB243A852A0F59177921B4879"}
    assert (await billing.transition(settlement["settlementId"], "submitted", tx))[0] == 200
    status, confirmed = await api.admin("POST", f"/v1/settlements/{settlement['settlementId']}/confirmed")  # no body, as in the README
    assert status == 200 and confirmed["status"] == "Confirmed"

    async def refused():
        status, _ = await api.admin("POST", f"/v1/sessions/{session['sessionId']}/finalize?force=true")
        return status == 409
    await eventually(refused)  # sessions learns the settlement status from billing's messages
