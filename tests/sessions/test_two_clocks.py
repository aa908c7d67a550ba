"""CONTRACT section 1, "Two clocks", through the reference gateway as it really is: it stamps
BootNotification with its own clock, the charger stamps its transaction and samples with its own,
and chargers' clocks are routinely off. A boot received before a session's start never closes it;
a reboot received after the session's events closes it (ChargerRebooted), whichever way and however
far the charger's clock is off; and the session is priced and settled on the right energy."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.chargers.gateway import ChargePoint, Clock, ReferenceGateway
from tests.chargers.test_reference_gateway import priced_site, register, settlement_of
from tests.sessions.flows import applied, session_when
from tests.support import eventually, unique_id

# How far the charger's clock is off the gateway's: behind and ahead, by a little and by a lot.
OFFSETS = pytest.mark.parametrize("offset", [-2, -600, 2, 600], ids=["behind-2s", "behind-10min", "ahead-2s", "ahead-10min"])


async def charger_off_by(api, offset: int, prefix: str) -> tuple[ChargePoint, dict]:
    """A registered charger on a site priced at 0.30 USD/kWh whose clock runs `offset` seconds off
    the gateway's; both clocks well after the tariff came into force. Returns it and the tariff."""
    site, tariff = await priced_site(api)
    now = datetime.fromisoformat(tariff["createdAt"]) + timedelta(minutes=15)
    gateway = ReferenceGateway(api, Clock(now))
    cp = ChargePoint(gateway, unique_id(prefix), Clock(now + timedelta(seconds=offset)))
    await register(api, cp.charge_point_id, site["siteId"])
    return cp, tariff


def wait(cp: ChargePoint, seconds: int) -> None:
    """Time passes for the charger and the gateway alike."""
    cp.clock.advance(seconds)
    cp.gateway.clock.advance(seconds)


async def priced(api, cp: ChargePoint, tx: int) -> tuple[dict, dict]:
    session = await session_when(api, cp.charge_point_id, tx, lambda s: s["costAmount"] is not None)
    return session, await eventually(lambda: settlement_of(api, session["sessionId"]))


@OFFSETS
async def test_a_boot_received_before_the_start_never_closes_the_session(api, pg, offset):
    cp, tariff = await charger_off_by(api, offset, "BOOTFIRST")
    await cp.boot()
    await cp.status(1, "Preparing")
    tx = await cp.start(1, "RFID-0001", meter_start_wh=1000)
    await cp.status(1, "Charging")
    for reading in ("4000", "7000"):  # the consumers take each event as it comes, minutes apart
        await applied(pg, cp.gateway.event_ids)
        charging = await session_when(api, cp.charge_point_id, tx)
        assert (charging["status"], charging["closedBy"], charging["energyWh"], charging["costAmount"]) == ("Active", None, None, None)
        wait(cp, 600)
        await cp.meter(tx, reading)

    wait(cp, 600)
    await cp.meter(tx, "10000")
    await cp.stop(tx, meter_stop_wh=13_000)
    session, settlement = await priced(api, cp, tx)
    assert (session["closedBy"], session["energyWh"], session["energySource"]) == ("Charger", 12_000, "StopTransaction")
    assert (session["tariffId"], session["costAmount"], session["costCurrency"]) == (tariff["tariffId"], "3.60", "USD")
    assert (settlement["amount"], settlement["currency"], settlement["status"]) == ("3.60", "USD", "Pending")
    assert cp.gateway.lost == []


@OFFSETS
async def test_a_reboot_mid_session_closes_it_and_the_next_session_stays_open(api, pg, offset):
    cp, tariff = await charger_off_by(api, offset, "REBOOT")
    await cp.boot()
    first = await cp.start(1, "RFID-0001", meter_start_wh=1000)
    for reading in ("3000", "6000"):  # the consumers take each event as it comes, minutes apart
        await applied(pg, cp.gateway.event_ids)
        assert (await session_when(api, cp.charge_point_id, first))["status"] == "Active"
        wait(cp, 600)
        await cp.meter(first, reading)

    wait(cp, 1)  # the charger reboots a second after its last sample: no StopTransaction
    await cp.boot()
    wait(cp, 60)
    second = await cp.start(1, "RFID-0002", meter_start_wh=6000)
    await cp.meter(second, "6500")
    await applied(pg, cp.gateway.event_ids)

    session, settlement = await priced(api, cp, first)
    assert (session["closedBy"], session["endedAt"]) == ("ChargerRebooted", None)
    assert (session["energyWh"], session["energySource"], session["isEstimated"]) == (5000, "MeterValues.Register", False)
    assert (session["tariffId"], session["costAmount"], settlement["amount"], settlement["status"]) == (
        tariff["tariffId"], "1.50", "1.50", "Pending")
    going = await session_when(api, cp.charge_point_id, second)
    assert (going["status"], going["closedBy"], going["costAmount"]) == ("Active", None, None)
    assert cp.gateway.lost == []
