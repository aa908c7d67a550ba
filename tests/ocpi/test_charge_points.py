"""Roaming as real charge points make it: a partner's START_SESSION reaches the charger over OCPP
1.6J through the CPMS's own gateway, and the session it starts says auth_method COMMAND in its
Session and CDR (a swipe of the same token says WHITELIST); an EVSE whose charger left the
gateway, or fell silent behind the reference gateway (its events POSTed to ingest), is UNKNOWN
to partners until the charger is heard again. A session the charger starts under a partner's
RESERVE_NOW says COMMAND too, once per reservation, and not once the reservation was cancelled."""
from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action

from services.ocpi.transport import timestamp
from tests.ocpi.conftest import Cpo, running_cpo
from tests.ocpi.emsp import Emsp
from tests.ocpi.test_commands import commands_url, published_charger, results
from tests.ocpi.test_locations_and_tariffs import location_of, make_charger, make_site
from tests.ocpi.test_sessions_and_cdrs import cdrs_of, session_pushes
from tests.ocpi.test_tokens import a_uid, token
from tests.support import eventually

SECRET = "s3cret-s3cret"  # the chargers' of published_charger and make_charger
SILENCE_SECONDS = 2.0  # CPMS_CHARGER_OFFLINE_AFTER_SECONDS of the CPMS behind the reference gateway


@pytest.fixture(scope="module")
async def gateway_cpo(make_settings, run_id: str) -> AsyncIterator[Cpo]:
    """A CPMS whose commands reach its own gateway, where the chargers connect."""
    async with running_cpo(make_settings, run_id, "ocpigw", own_gateway=True) as cpo:
        yield cpo


@pytest.fixture(scope="module")
async def quiet_cpo(make_settings, run_id: str) -> AsyncIterator[Cpo]:
    """A CPMS whose chargers are offline after SILENCE_SECONDS without a word."""
    async with running_cpo(make_settings, run_id, "ocpiquiet", charger_offline_after_seconds=SILENCE_SECONDS) as cpo:
        yield cpo


class Charger(ChargePoint):
    """A charge point that accepts every RemoteStartTransaction and ReserveNow and remembers them,
    and cancels a reservation it holds."""

    def __init__(self, charge_point_id: str, connection: Any) -> None:
        super().__init__(charge_point_id, connection, response_timeout=20)
        self.remote_starts: list[dict] = []
        self.reservations: dict[int, dict] = {}  # held, by reservationId

    @on(Action.remote_start_transaction)
    def on_remote_start_transaction(self, id_tag: str, connector_id: int | None = None, **_: Any) -> call_result.RemoteStartTransaction:
        self.remote_starts.append({"idTag": id_tag, "connectorId": connector_id})
        return call_result.RemoteStartTransaction(status="Accepted")

    @on(Action.reserve_now)
    def on_reserve_now(self, connector_id: int, expiry_date: str, id_tag: str, reservation_id: int,
                       **_: Any) -> call_result.ReserveNow:
        self.reservations[reservation_id] = {"connectorId": connector_id, "idTag": id_tag, "expiryDate": expiry_date}
        return call_result.ReserveNow(status="Accepted")

    @on(Action.cancel_reservation)
    def on_cancel_reservation(self, reservation_id: int, **_: Any) -> call_result.CancelReservation:
        return call_result.CancelReservation(status="Accepted" if self.reservations.pop(reservation_id, None) else "Rejected")

    async def status(self, status: str) -> None:
        await self.call(call.StatusNotification(connector_id=1, error_code="NoError", status=status, timestamp=_now()))

    async def start_transaction(self, id_tag: str, meter_start: int, reservation_id: int | None = None) -> int:
        """Start on connector 1; with a reservation it holds, that reservation is used up."""
        if reservation_id is not None:
            assert self.reservations.pop(reservation_id)["idTag"] == id_tag
        answer = await self.call(call.StartTransaction(connector_id=1, id_tag=id_tag, meter_start=meter_start, timestamp=_now(),
                                                       reservation_id=reservation_id))
        assert answer.id_tag_info["status"] == "Accepted", answer
        return answer.transaction_id

    async def stop_transaction(self, transaction_id: int, meter_stop: int) -> None:
        await self.call(call.StopTransaction(meter_stop=meter_stop, timestamp=_now(), transaction_id=transaction_id, reason="Local"))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _whole_second() -> str:
    """The time as the reference gateway stamps it."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@contextlib.asynccontextmanager
async def connected(cpo: Cpo, charge_point_id: str) -> AsyncIterator[Charger]:
    """A charger connected to the CPMS's gateway (Basic auth, ocpp1.6), booted and serving its socket."""
    basic = base64.b64encode(f"{charge_point_id}:{SECRET}".encode()).decode()
    async with websockets.connect(f"{cpo.charger_url}/{charge_point_id}", subprotocols=["ocpp1.6"],
                                  additional_headers={"Authorization": f"Basic {basic}"}) as socket:
        charger = Charger(charge_point_id, socket)
        serving = asyncio.create_task(charger.start())
        try:
            await charger.call(call.BootNotification(charge_point_model="Eve Single", charge_point_vendor="Alfen"))
            yield charger
        finally:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await serving


async def _put_of(emsp: Emsp, known: set[str]) -> dict | None:
    """The first Session PUT to the eMSP that is not among `known`."""
    return next((p.body for p in emsp.pushes("sessions") if p.method == "PUT" and p.body["id"] not in known), None)


async def priced_charger(cpo: Cpo, emsp: Emsp) -> tuple[str, str]:
    """The partner registered, and (siteId, chargePointId) of a charger it can read, at a site with a tariff."""
    await cpo.registered_emsp(emsp)
    site_id, cp = await published_charger(cpo, emsp)
    status, tariff = await cpo.api.admin("POST", f"/v1/sites/{site_id}/tariffs", {"pricePerKwh": "0.30", "currency": "EUR"})
    assert status == 201, tariff
    return site_id, cp

async def test_a_session_started_by_start_session_says_command_and_a_swipe_of_the_same_token_does_not(
        gateway_cpo: Cpo, emsp: Emsp) -> None:
    cpo = gateway_cpo
    site_id, cp = await priced_charger(cpo, emsp)
    uid, reference = a_uid(), uuid.uuid4().hex
    async with connected(cpo, cp) as charger:
        await charger.status("Available")
        status, answer, _ = await emsp.call("POST", commands_url(cpo, "START_SESSION"), json={
            "response_url": f"{emsp.url}/ocpi/emsp/2.2.1/commands/START_SESSION/{reference}", "token": token(uid),
            "location_id": site_id, "evse_uid": f"{cp}*1", "authorization_reference": f"AUTH-{reference[:8]}"})
        assert status == 200 and answer["data"]["result"] == "ACCEPTED", answer
        assert await eventually(lambda: _results(emsp, reference)) == [{"result": "ACCEPTED"}]
        assert charger.remote_starts == [{"idTag": uid, "connectorId": 1}]

        # The driver plugs in: the charger starts the transaction the command asked for.
        await charger.status("Preparing")
        commanded = await charger.start_transaction(uid, 1000)
        await charger.status("Charging")
        put = await eventually(lambda: _put_of(emsp, set()))
        assert put["auth_method"] == "COMMAND" and put["authorization_reference"] == f"AUTH-{reference[:8]}", put
        assert put["cdr_token"]["uid"] == uid and put["evse_uid"] == f"{cp}*1"
        await charger.stop_transaction(commanded, 4000)
        await charger.status("Available")
        [cdr] = await cdrs_of(emsp, put["id"], 1)
        assert cdr["auth_method"] == "COMMAND" == put["auth_method"]
        assert cdr["authorization_reference"] == put["authorization_reference"] and cdr["total_energy"] == 3

        # The same token swiped at the same charger, while the command would still be in time: the
        # command started one session, and this one is authorized by the token the eMSP handed over.
        await charger.call(call.Authorize(id_tag=uid))
        swiped = await charger.start_transaction(uid, 4000)
        second = await eventually(lambda: _put_of(emsp, {put["id"]}))
        assert second["auth_method"] == "WHITELIST" and "authorization_reference" not in second, second
        await charger.stop_transaction(swiped, 5000)
        [cdr] = await cdrs_of(emsp, second["id"], 1)
        assert cdr["auth_method"] == "WHITELIST" and "authorization_reference" not in cdr
    assert [p.body.get("auth_method") for p in session_pushes(emsp, put["id"]) if "auth_method" in p.body] == ["COMMAND"]


async def _results(emsp: Emsp, reference: str) -> list[dict]:
    return results(emsp, reference)


async def _command(cpo: Cpo, emsp: Emsp, name: str, body: dict) -> str:
    """A partner's command, answered ACCEPTED at once and then ACCEPTED by the charger; the
    reference of its response_url."""
    reference = uuid.uuid4().hex
    status, answer, _ = await emsp.call("POST", commands_url(cpo, name), json={
        "response_url": f"{emsp.url}/ocpi/emsp/2.2.1/commands/{name}/{reference}", **body})
    assert status == 200 and answer["data"]["result"] == "ACCEPTED", answer
    assert await eventually(lambda: _results(emsp, reference)) == [{"result": "ACCEPTED"}]
    return reference


def _reservation(uid: str, reservation_id: str, site_id: str, cp: str, authorization_reference: str) -> dict:
    """A RESERVE_NOW of the charger's connector 1 for half an hour."""
    return {"token": token(uid), "expiry_date": timestamp(datetime.now(UTC) + timedelta(minutes=30)),
            "reservation_id": reservation_id, "location_id": site_id, "evse_uid": f"{cp}*1",
            "authorization_reference": authorization_reference}


async def test_a_session_started_under_a_reserve_now_says_command_once_and_not_after_its_cancellation(
        gateway_cpo: Cpo, emsp: Emsp) -> None:
    cpo = gateway_cpo
    site_id, cp = await priced_charger(cpo, emsp)
    uid, reference = a_uid(), f"RES-{uuid.uuid4().hex[:8]}"
    async with connected(cpo, cp) as charger:
        await charger.status("Available")
        await _command(cpo, emsp, "RESERVE_NOW", _reservation(uid, f"R-{uuid.uuid4().hex[:8]}", site_id, cp, reference))
        [(reservation_id, held)] = charger.reservations.items()
        assert held["idTag"] == uid and held["connectorId"] == 1
        await charger.status("Reserved")

        # The driver arrives: the charger starts a transaction with the reserved idTag, using the reservation.
        await charger.status("Preparing")
        reserved = await charger.start_transaction(uid, 1000, reservation_id=reservation_id)
        await charger.status("Charging")
        put = await eventually(lambda: _put_of(emsp, set()))
        assert put["auth_method"] == "COMMAND" and put["authorization_reference"] == reference, put
        assert put["cdr_token"]["uid"] == uid and put["evse_uid"] == f"{cp}*1"
        await charger.stop_transaction(reserved, 3000)
        await charger.status("Available")
        [cdr] = await cdrs_of(emsp, put["id"], 1)
        assert cdr["auth_method"] == "COMMAND" and cdr["authorization_reference"] == reference and cdr["total_energy"] == 2

        # The same token again before the reservation's expiry: a reservation is used once.
        again = await charger.start_transaction(uid, 3000)
        second = await eventually(lambda: _put_of(emsp, {put["id"]}))
        assert second["auth_method"] == "WHITELIST" and "authorization_reference" not in second, second
        await charger.stop_transaction(again, 3500)
    assert [p.body.get("auth_method") for p in session_pushes(emsp, put["id"]) if "auth_method" in p.body] == ["COMMAND"]


async def test_a_session_after_its_reservation_was_cancelled_does_not_say_command(gateway_cpo: Cpo, emsp: Emsp) -> None:
    cpo = gateway_cpo
    site_id, cp = await priced_charger(cpo, emsp)
    uid, reservation_id = a_uid(), f"R-{uuid.uuid4().hex[:8]}"
    async with connected(cpo, cp) as charger:
        await charger.status("Available")
        await _command(cpo, emsp, "RESERVE_NOW", _reservation(uid, reservation_id, site_id, cp, f"RES-{uuid.uuid4().hex[:8]}"))
        await _command(cpo, emsp, "CANCEL_RESERVATION", {"reservation_id": reservation_id})
        assert charger.reservations == {}  # the charger let it go

        # The token comes before the reservation would have expired: it is the stored token that lets it charge.
        started = await charger.start_transaction(uid, 1000)
        put = await eventually(lambda: _put_of(emsp, set()))
        assert put["auth_method"] == "WHITELIST" and "authorization_reference" not in put, put
        await charger.stop_transaction(started, 2000)


async def test_a_reservation_made_again_is_the_one_a_session_states(gateway_cpo: Cpo, emsp: Emsp) -> None:
    """OCPI: a RESERVE_NOW of a reservation_id held replaces it (OCPP: the same reservationId)."""
    cpo = gateway_cpo
    site_id, cp = await priced_charger(cpo, emsp)
    uid, reservation_id = a_uid(), f"R-{uuid.uuid4().hex[:8]}"
    first, replacing = f"RES-{uuid.uuid4().hex[:8]}", f"RES-{uuid.uuid4().hex[:8]}"
    async with connected(cpo, cp) as charger:
        await charger.status("Available")
        await _command(cpo, emsp, "RESERVE_NOW", _reservation(uid, reservation_id, site_id, cp, first))
        await _command(cpo, emsp, "RESERVE_NOW", _reservation(uid, reservation_id, site_id, cp, replacing))
        [ocpp_reservation_id] = charger.reservations

        started = await charger.start_transaction(uid, 1000, reservation_id=ocpp_reservation_id)
        put = await eventually(lambda: _put_of(emsp, set()))
        assert put["auth_method"] == "COMMAND" and put["authorization_reference"] == replacing, put
        await charger.stop_transaction(started, 2000)
        await charger.status("Available")
        [cdr] = await cdrs_of(emsp, put["id"], 1)
        assert cdr["auth_method"] == "COMMAND" and cdr["authorization_reference"] == replacing

        # The replaced one is no reservation any more: the token again is no COMMAND.
        again = await charger.start_transaction(uid, 2000)
        second = await eventually(lambda: _put_of(emsp, {put["id"]}))
        assert second["auth_method"] == "WHITELIST" and "authorization_reference" not in second, second
        await charger.stop_transaction(again, 2500)


def _evse_patches(emsp: Emsp, site_id: str, cp: str) -> list[str]:
    return [p.body["status"] for p in emsp.pushes("locations") if p.method == "PATCH" and p.path == f"/NL/CPM/{site_id}/{cp}*1"]


async def _evse_status(emsp: Emsp, cpo: Cpo, site_id: str) -> str | None:
    location = await location_of(emsp, cpo, site_id)
    return location["evses"][0]["status"] if location and location["evses"] else None


async def test_an_evse_whose_charger_leaves_the_gateway_is_unknown_until_it_connects_again(gateway_cpo: Cpo, emsp: Emsp) -> None:
    cpo = gateway_cpo
    await cpo.registered_emsp(emsp)
    site_id = await make_site(cpo)
    cp = await make_charger(cpo, site_id)

    async def shows(status: str) -> bool:
        return await _evse_status(emsp, cpo, site_id) == status

    async with connected(cpo, cp) as charger:
        await charger.status("Available")
        await eventually(lambda: shows("AVAILABLE"))
    await eventually(lambda: shows("UNKNOWN"))  # the socket closed: the gateway reported it
    async with connected(cpo, cp):
        await eventually(lambda: shows("AVAILABLE"))

    async def patched() -> list[str] | None:
        found = _evse_patches(emsp, site_id, cp)
        return found if len(found) >= 3 else None

    assert await eventually(patched) == ["AVAILABLE", "UNKNOWN", "AVAILABLE"]


async def test_an_evse_whose_charger_falls_silent_behind_the_reference_gateway_is_unknown_once_until_it_is_heard(
        quiet_cpo: Cpo, emsp: Emsp) -> None:
    cpo = quiet_cpo
    await cpo.registered_emsp(emsp)
    site_id = await make_site(cpo)
    cp = await make_charger(cpo, site_id)
    # What the reference gateway POSTs to ingest, in whole seconds; it never says a charger left.
    await cpo.api.send_events({"type": "ChargerBooted", "chargePointId": cp, "ts": _whole_second(), "vendor": "Alfen",
                               "model": "Eve Single", "ocppVersion": "1.6"},
                              {"type": "ConnectorStatusChanged", "chargePointId": cp, "ts": _whole_second(), "connectorId": 1,
                               "status": "Available", "errorCode": "NoError"})

    async def patched(count: int) -> list[str] | None:
        found = _evse_patches(emsp, site_id, cp)
        return found[:count] if len(found) >= count else None

    assert await eventually(lambda: patched(2)) == ["AVAILABLE", "UNKNOWN"]  # heard, then silent for SILENCE_SECONDS
    assert await _evse_status(emsp, cpo, site_id) == "UNKNOWN"
    status, fleet = await cpo.api.admin("GET", f"/v1/chargers?q={cp}")
    assert status == 200 and [c["online"] for c in fleet["items"]] == [False]  # the same rule as the fleet's
    async with _database(cpo) as db:
        announced = await db.fetchval("SELECT connection_at FROM ocpi.chargers WHERE charge_point_id = $1", cp)
        await asyncio.sleep(SILENCE_SECONDS)  # several more rounds of the watch: the silence is announced once
        assert await db.fetchval("SELECT connection_at FROM ocpi.chargers WHERE charge_point_id = $1", cp) == announced

    await cpo.api.send_events({"type": "ChargerHeartbeat", "chargePointId": cp, "ts": _whole_second()})
    assert await eventually(lambda: patched(3)) == ["AVAILABLE", "UNKNOWN", "AVAILABLE"]


@contextlib.asynccontextmanager
async def _database(cpo: Cpo) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(cpo.api.database_url)
    try:
        yield connection
    finally:
        await connection.close()
