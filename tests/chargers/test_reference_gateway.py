"""Real chargers through the reference gateway, as it really is (tests/chargers/gateway.py), over
full sessions against the real Postgres and RabbitMQ. Each test is a thing that went wrong with a
real charge point: the connector that stayed Preparing, the first session left unpriced, the load
generator whose sessions were all lost, the late sample after the money moved, the transaction id
that came back, the charger that rebooted mid-session, the timestamp from year 1."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tests.chargers.gateway import ChargePoint, Clock, ReferenceGateway, rfc3339
from tests.sessions.flows import applied, finalized, session_when, sessions_of
from tests.support import eventually, unique_id

SECRET = "a-secret-of-ours"


async def register(api, cp: str, site_id: str | None = None) -> None:
    body = {"chargePointId": cp, "secret": SECRET} | ({"siteId": site_id} if site_id else {})
    status, answer = await api.admin("POST", "/v1/chargers", body)
    assert status == 201, answer


async def priced_site(api, price: str = "0.30") -> tuple[dict, dict]:
    _, site = await api.admin("POST", "/v1/sites", {"name": f"Site {unique_id()}"})
    status, tariff = await api.admin("POST", f"/v1/sites/{site['siteId']}/tariffs", {"pricePerKwh": price, "currency": "USD"})
    assert status == 201, tariff
    return site, tariff


async def settlement_of(api, session_id: str) -> dict | None:
    _, body = await api.admin("GET", f"/v1/settlements?sessionId={session_id}")
    return body["items"][0] if body["items"] else None


async def test_a_whole_charge_within_one_second_ends_in_the_last_status(api, pg):
    """Preparing, start, a sample, stop, Finishing, Available: all stamped with the same second."""
    gateway = ReferenceGateway(api, Clock(datetime.now(UTC)))
    cp = ChargePoint(gateway, unique_id("ONESEC"), Clock(gateway.clock.now()))
    await register(api, cp.charge_point_id)
    await cp.boot()
    await cp.status(1, "Preparing")
    tx = await cp.start(1, "RFID-0001", meter_start_wh=1000)
    await cp.status(1, "Charging")
    await cp.meter(tx, "1400")
    await cp.stop(tx, meter_stop_wh=1500)
    await cp.status(1, "Finishing")
    await cp.status(1, "Available")
    assert gateway.lost == []
    await applied(pg, gateway.event_ids)
    _, connectors = await api.admin("GET", f"/v1/chargers/{cp.charge_point_id}/connectors")
    assert [(c["connectorId"], c["status"]) for c in connectors["items"]] == [(1, "Available")]
    session = await session_when(api, cp.charge_point_id, tx, finalized)
    assert (session["energyWh"], session["energySource"], session["closedBy"]) == (500, "StopTransaction", "Charger")


async def test_the_first_charge_right_after_the_tariff_is_priced(api, pg):
    """The tariff is created at hh:mm:ss.4; the charger stamps its start hh:mm:ss."""
    site, tariff = await priced_site(api)
    created = datetime.fromisoformat(tariff["createdAt"])
    assert created.microsecond, "a tariff created on a whole second proves nothing here"
    gateway = ReferenceGateway(api, Clock(created))
    cp = ChargePoint(gateway, unique_id("FIRST"), Clock(created))  # whole seconds: the start is before the tariff
    await register(api, cp.charge_point_id, site["siteId"])
    tx = await cp.start(1, "RFID-0001")
    cp.clock.advance(1800)
    await cp.stop(tx, meter_stop_wh=10_000)
    session = await session_when(api, cp.charge_point_id, tx, lambda s: s["costAmount"] is not None)
    assert session["startedAt"] == rfc3339(created) and session["tariffId"] == tariff["tariffId"]
    assert (session["costAmount"], session["costCurrency"]) == ("3.00", "USD")
    settlement = await eventually(lambda: settlement_of(api, session["sessionId"]))
    assert (settlement["amount"], settlement["status"]) == ("3.00", "Pending")
    assert tariff["pricePerKwh"] == "0.30"


async def test_a_load_generator_with_21_character_id_tags_loses_no_session(api, pg):
    """A load generator's idTags are one character over OCPP's 20: every start must still count."""
    gateway = ReferenceGateway(api)
    chargers = [ChargePoint(gateway, unique_id("LOADGEN")) for _ in range(20)]

    async def charge(index: int, cp: ChargePoint) -> tuple[str, int, int]:
        await cp.status(1, "Preparing")
        tx = await cp.start(1, f"LOADGEN-{index:013d}", meter_start_wh=5000 + index)
        for k in range(1, 4):
            await cp.meter(tx, str(5000 + index + 700 * k))
        await cp.stop(tx, meter_stop_wh=5000 + index + 2500)
        await cp.status(1, "Available")
        return cp.charge_point_id, tx, 2500

    results = await asyncio.gather(*(charge(i, cp) for i, cp in enumerate(chargers)))
    assert gateway.lost == [] and set(gateway.answers) == {202}
    for cp_id, tx, energy in results:
        session = await session_when(api, cp_id, tx, finalized)
        assert (session["energyWh"], session["energySource"]) == (energy, "StopTransaction")
        assert len(session["idTag"]) == 21
    rows = await pg.fetch("SELECT anomalies FROM ingest.events WHERE charge_point_id = ANY($1) AND type = 'TransactionStarted'",
                          [c.charge_point_id for c in chargers])
    assert len(rows) == 20 and all(r["anomalies"] == ["id_tag_too_long"] for r in rows)


def after_the_tariff(tariff: dict) -> Clock:
    """A charger clock a few seconds after the tariff's creation (its whole second is another test)."""
    return Clock(datetime.fromisoformat(tariff["createdAt"]) + timedelta(seconds=2))


async def test_once_the_money_has_moved_the_session_keeps_what_was_billed(api, pg):
    site, tariff = await priced_site(api)
    gateway = ReferenceGateway(api)
    cp = ChargePoint(gateway, unique_id("MOVED"), after_the_tariff(tariff))
    await register(api, cp.charge_point_id, site["siteId"])
    tx = await cp.start(1, "RFID-0001")
    cp.clock.advance(600)
    await cp.meter(tx, "10000")
    cp.clock.advance(60)
    await cp.stop(tx)  # no meterStop: the Register sample gives the energy
    session = await session_when(api, cp.charge_point_id, tx, lambda s: s["costAmount"] == "3.00")
    settlement = await eventually(lambda: settlement_of(api, session["sessionId"]))
    path = f"/v1/settlements/{settlement['settlementId']}/submitted"

    status, problem = await api.admin("POST", path, {"chain": "XRPL", "txHash": "TX1", "amount": "2.99", "currency": "USD"})
    assert status == 409 and (problem["amount"], problem["currency"], problem["currentStatus"]) == ("3.00", "USD", "Pending")
    assert (await api.admin("GET", f"/v1/settlements/{settlement['settlementId']}"))[1] == settlement  # nothing changed
    status, submitted = await api.admin("POST", path, {"chain": "XRPL", "txHash": "TX1", "amount": "3.0", "currency": "USD"})
    assert status == 200 and submitted["status"] == "Submitted"

    # Right after the submission: money has moved, a force finalize is refused.
    status, problem = await api.admin("POST", f"/v1/sessions/{session['sessionId']}/finalize?force=true")
    assert status == 409, problem
    # A late MeterValues: the session keeps the billed energy and cost; the rest shows apart.
    cp.clock.advance(60)
    await cp.meter(tx, "20000")
    await applied(pg, gateway.event_ids)
    _, after = await api.admin("GET", f"/v1/sessions/{session['sessionId']}")
    assert (after["energyWh"], after["costAmount"], after["unbilledEnergyWh"]) == (10_000, "3.00", 10_000)
    assert (await settlement_of(api, session["sessionId"]))["amount"] == "3.00"


async def test_a_force_that_raced_the_submission_converges_back_to_the_billed_figures(api, pg):
    site, tariff = await priced_site(api)
    gateway = ReferenceGateway(api)
    cp = ChargePoint(gateway, unique_id("RACE"), after_the_tariff(tariff))
    await register(api, cp.charge_point_id, site["siteId"])
    tx = await cp.start(1, "RFID-0001")
    await cp.meter(tx, "10000")
    await cp.stop(tx)
    session = await session_when(api, cp.charge_point_id, tx, lambda s: s["costAmount"] == "3.00")
    settlement = await eventually(lambda: settlement_of(api, session["sessionId"]))
    # The operator submits while a late sample (12,000 Wh) and a force finalize race it.
    submit = api.admin("POST", f"/v1/settlements/{settlement['settlementId']}/submitted", {"chain": "XRPL", "txHash": "TX9"})
    force = api.admin("POST", f"/v1/sessions/{session['sessionId']}/finalize?force=true")
    (submit_status, _), (force_status, _), _ = await asyncio.gather(submit, force, cp.meter(tx, "12000"))
    assert submit_status == 200 and force_status in (200, 409)
    await applied(pg, gateway.event_ids)

    async def billed():
        _, now = await api.admin("GET", f"/v1/sessions/{session['sessionId']}")
        return now if (now["energyWh"], now["costAmount"]) in ((10_000, "3.00"), (12_000, "3.60")) else None

    final = await eventually(billed)
    settled = await settlement_of(api, session["sessionId"])
    assert Decimal(final["costAmount"]) == Decimal(settled["amount"])  # the session shows what was minted
    assert final["energyWh"] * Decimal("0.30") / 1000 == Decimal(settled["amount"])


async def test_the_gateways_transaction_id_coming_back_three_years_later_is_a_new_session(api, pg):
    gateway = ReferenceGateway(api, Clock(datetime(2026, 11, 25, 10, 0, tzinfo=UTC)))
    cp = ChargePoint(gateway, unique_id("REUSE"), gateway.clock)
    await register(api, cp.charge_point_id)
    first = await cp.start(1, "RFID-0001", meter_start_wh=100)
    await cp.stop(first, meter_stop_wh=1100)
    gateway.clock.advance(100_000_000)  # unix seconds mod 10^8 come round again
    second = await cp.start(1, "RFID-0002", meter_start_wh=5000)
    assert second == first
    await cp.meter(second, "5800")
    await cp.stop(second, meter_stop_wh=7000)
    await applied(pg, gateway.event_ids)

    sessions = await eventually(lambda: _finalized_sessions(api, cp.charge_point_id, 2))
    assert [(s["transactionId"], s["energyWh"], s["idTag"]) for s in sessions] == [(first, 2000, "RFID-0002"), (first, 1000, "RFID-0001")]
    assert all(s["conflicts"] == [] for s in sessions)


async def test_two_connectors_starting_in_one_second_are_a_conflict_never_merged_silently(api, pg):
    gateway = ReferenceGateway(api, Clock(datetime.now(UTC)))
    cp = ChargePoint(gateway, unique_id("TWIN"), gateway.clock)
    await register(api, cp.charge_point_id)
    left = await cp.start(1, "RFID-LEFT", meter_start_wh=100)
    right = await cp.start(2, "RFID-RIGHT", meter_start_wh=900)
    assert left == right  # the same second gives the same id
    await applied(pg, gateway.event_ids)
    sessions = await sessions_of(api, cp.charge_point_id)
    assert len(sessions) == 1
    session = sessions[0]
    assert (session["connectorId"], session["idTag"], session["meterStartWh"]) == (1, "RFID-LEFT", 100)
    assert [(c["connectorId"], c["idTag"], c["meterStartWh"]) for c in session["conflicts"]] == [(2, "RFID-RIGHT", 900)]
    _, metrics = await api.anonymous("GET", "/metrics")
    assert "cpms_sessions_transaction_id_conflicts_total" in metrics


async def test_a_charger_that_reboots_mid_session_closes_it_and_its_late_stop_wins(api, pg):
    gateway = ReferenceGateway(api)
    cp = ChargePoint(gateway, unique_id("REBOOT"))
    await register(api, cp.charge_point_id)
    tx = await cp.start(1, "RFID-0001", meter_start_wh=2000)
    await cp.meter(tx, "2600")
    # The charger reboots: its clock starts at 1970 until it is set again.
    cp.clock.set(datetime(1970, 1, 1, 0, 0, 12, tzinfo=UTC))
    await cp.boot(firmware="6.1.3")
    await cp.status(1, "Available")
    assert gateway.lost == []
    await applied(pg, gateway.event_ids)
    _, connectors = await api.admin("GET", f"/v1/chargers/{cp.charge_point_id}/connectors")
    received = datetime.fromisoformat(connectors["items"][0]["updatedAt"])
    assert connectors["items"][0]["status"] == "Available" and received > datetime.now(UTC) - timedelta(minutes=5)

    # The boot came after the session's last event: the session closes itself, with what is known.
    closed = await session_when(api, cp.charge_point_id, tx, finalized)
    assert (closed["closedBy"], closed["energyWh"], closed["energySource"]) == ("ChargerRebooted", 600, "MeterValues.Register")
    # The clock is set again, and the charger delivers the StopTransaction it had kept.
    cp.clock.set(datetime.now(UTC))
    await cp.stop(tx, meter_stop_wh=2750, reason="PowerLoss")
    ended = await session_when(api, cp.charge_point_id, tx, lambda s: s["closedBy"] == "Charger")
    assert (ended["energyWh"], ended["energySource"], ended["reason"]) == (750, "StopTransaction", "PowerLoss")


async def test_no_timestamp_and_no_path_value_gets_a_5xx(api):
    cp = unique_id("EDGE")
    for ts in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2026-02-30T10:00:00Z", "", "2026-11-25T10:00:00.123456789Z"):
        status, body = await api.gateway("POST", "/v1/gateway/events", {"type": "ChargerHeartbeat", "chargePointId": cp, "ts": ts})
        assert status == 202, (ts, body)
    for path in ("/v1/chargers/a%00b", "/v1/chargers/a%00b/sessions", "/v1/chargers/" + "x" * 5000,
                 "/v1/sessions?cursor=%00", "/v1/settlements?chargePointId=" + "y" * 5000):
        status, body = await api.admin("GET", path)
        assert status in (400, 404) and body["status"] == status, (path[:40], status, body)
    status, body = await api.admin("PUT", "/v1/chargers/a%00b/active", {"isActive": False})
    assert status == 400 and body["errors"][0]["loc"] == ["path", "chargePointId"]


async def _finalized_sessions(api, cp: str, count: int) -> list[dict] | None:
    items = [s for s in await sessions_of(api, cp) if s["status"] == "Finalized"]
    return items if len(items) == count else None
