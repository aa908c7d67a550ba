"""The whole path with the real billing service: a session on a priced site shows its cost."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.jsonutil import format_ts
from tests.ingest import gateway_events as ev
from tests.sessions.flows import send, session_when
from tests.support import unique_id


async def test_a_finalized_session_on_a_site_with_a_tariff_shows_its_cost(api):
    status, site = await api.admin("POST", "/v1/sites", {"name": f"Depot {unique_id()}"})
    assert status == 201, site
    status, tariff = await api.admin("POST", f"/v1/sites/{site['siteId']}/tariffs", {"pricePerKwh": "0.30", "currency": "USD"})
    assert status == 201, tariff
    cp = unique_id()
    status, _ = await api.admin("POST", "/v1/chargers", {"chargePointId": cp, "secret": "s3cret-s3cret", "siteId": site["siteId"]})
    assert status == 201
    started_at = datetime.now(UTC) + timedelta(seconds=1)  # after the tariff came into force
    await send(api, ev.started(cp, 1, meter_start=1000, ts=format_ts(started_at)),
               ev.ended(cp, 1, meter_stop=13345, ts=format_ts(started_at + timedelta(minutes=30))))
    session = await session_when(api, cp, 1, lambda s: s["costAmount"] is not None)
    assert session["energyWh"] == 12345 and session["costAmount"] == "3.70" and session["costCurrency"] == "USD"
    assert session["tariffId"] == tariff["tariffId"] and session["pricedAt"]
