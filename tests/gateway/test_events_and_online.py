"""The new event types through ingest (FirmwareStatus, DiagnosticsStatus, ChargerConnected,
ChargerDisconnected, and DataTransfer archived) and `online` exact for chargers behind this
gateway: online while connected, offline as soon as the socket closes, whatever the 900 s rule."""
from __future__ import annotations

from ocpp.v16 import call
from tests.gateway.conftest import connected
from tests.support import eventually


async def _online(api, cp: str) -> bool | None:
    _, body = await api.admin("GET", f"/v1/chargers?q={cp}")
    items = [c for c in body["items"] if c["chargePointId"] == cp]
    return items[0]["online"] if items else None


async def _listed(api, cp: str, online: bool) -> bool:
    _, body = await api.admin("GET", f"/v1/chargers?q={cp}&online={'true' if online else 'false'}")
    return any(c["chargePointId"] == cp for c in body["items"])


async def test_firmware_diagnostics_and_data_transfer_are_answered_and_archived(api, gateway, registered, pg):
    cp, secret = await registered()
    async with connected(gateway, cp, secret) as charger:
        await charger.call(call.FirmwareStatusNotification(status="Downloading"))
        await charger.call(call.DiagnosticsStatusNotification(status="Uploaded"))
        answer = await charger.call(call.DataTransfer(vendor_id="com.example", message_id="Ping", data="{}"))
        assert answer.status == "UnknownVendorId"

    async def archived():
        rows = await pg.fetch("SELECT type, body FROM ingest.events WHERE charge_point_id = $1", cp)
        types = {r["type"]: r["body"] for r in rows}
        return types if {"ChargerConnected", "ChargerDisconnected", "FirmwareStatus", "DiagnosticsStatus", "DataTransfer"} <= set(types) else None

    types = await eventually(archived)
    assert types["FirmwareStatus"]["status"] == "Downloading"
    assert types["DiagnosticsStatus"]["status"] == "Uploaded"
    assert types["DataTransfer"]["vendorId"] == "com.example"
    assert types["ChargerConnected"]["remoteAddr"].startswith("127.0.0.1:")
    assert types["ChargerDisconnected"]["reason"]
    assert not any(body.get("anomalies") for body in types.values())


async def test_a_vendor_configured_for_data_transfer_is_accepted(make_gateway, registered):
    gateway = await make_gateway(data_transfer_vendors="com.example, org.other")
    cp, secret = await registered()
    async with connected(gateway, cp, secret) as charger:
        assert (await charger.call(call.DataTransfer(vendor_id="org.other"))).status == "Accepted"
        assert (await charger.call(call.DataTransfer(vendor_id="com.unknown"))).status == "UnknownVendorId"


async def test_online_follows_the_connection_exactly(api, gateway, registered):
    cp, secret = await registered()
    async with connected(gateway, cp, secret) as charger:
        await charger.boot()
        assert await eventually(lambda: _listed(api, cp, online=True))
        assert await _online(api, cp) is True
    # closed: offline at once, though it was heard seconds ago (well within 900 s)
    assert await eventually(lambda: _listed(api, cp, online=False))
    assert await _online(api, cp) is False
    async with connected(gateway, cp, secret):
        assert await eventually(lambda: _listed(api, cp, online=True))
