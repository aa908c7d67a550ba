"""One simulated OCPP 1.6J charge point. It boots, reports its connectors, runs its planned
sessions (Authorize, Preparing, StartTransaction, Charging, MeterValues, StopTransaction,
Finishing, Available), and answers every command a central system may send it (the nineteen of
shared/ocpp_commands.py) as a charger would, acting on what it accepted: a remote start charges,
a charging profile limits the power it draws, a trigger sends the message asked for."""
from __future__ import annotations

import asyncio
import itertools
import json
import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ocpp.exceptions import OCPPError
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from services.simulator.meter import Charge, drawn_power, limit_in_watts, watts_in

log = logging.getLogger(__name__)

RESPONSE_TIMEOUT_SECONDS = 30
MESSAGE_ATTEMPTS = 5  # a transaction message is sent again after a CallError or no answer, as OCPP 1.6 asks
FEATURE_PROFILES = "Core,FirmwareManagement,LocalAuthListManagement,Reservation,SmartCharging,RemoteTrigger"
MEASURANDS = "Energy.Active.Import.Register,Power.Active.Import"


@dataclass(frozen=True)
class Behaviour:
    """How every simulated charger of a run behaves."""

    connectors: int = 2
    sessions: int = 1
    energy_wh: int = 10_000
    max_power_w: float = 11_000.0
    meter_interval: float = 2.0
    speed: float = 360.0
    id_tag: str = "SIMULATOR"
    rate_unit: str = "Power"  # ChargingScheduleAllowedChargingRateUnit: Current, Power or Current,Power
    linger: float = 0.0  # seconds to stay connected after the planned sessions, answering commands
    vendor: str = "CPMS"
    model: str = "Simulator"


@dataclass
class Tally:
    """What a run did, over every charger: the summary printed at the end."""

    chargers_connected: int = 0
    chargers_refused: int = 0
    chargers_failed: int = 0
    sessions_started: int = 0
    sessions_stopped: int = 0
    sessions_refused: int = 0
    energy_wh: int = 0
    calls_sent: int = 0
    calls_errored: int = 0
    calls_unanswered: int = 0
    commands_answered: int = 0
    commands_errored: int = 0
    commands: Counter = field(default_factory=Counter)


class Link:
    """The charger's end of its WebSocket as the library's ChargePoint uses it (`send`, `recv`).
    It outlives one connection (`attach` a new one after a reconnection) and counts the frames:
    calls sent and the CallErrors they got, commands received and how they were answered."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.websocket: ClientConnection | None = None
        self.online = asyncio.Event()

    def attach(self, websocket: ClientConnection) -> None:
        self.websocket = websocket
        self.online.set()

    async def send(self, message: str) -> None:
        if self.websocket is None:
            raise ConnectionError("not connected")
        await self.websocket.send(message)
        kind = _frame_of(message)[0]
        if kind == 2:
            self.tally.calls_sent += 1
        elif kind == 3:
            self.tally.commands_answered += 1
        elif kind == 4:
            self.tally.commands_errored += 1

    async def recv(self) -> str:
        if self.websocket is None:
            raise ConnectionError("not connected")
        try:
            message = await self.websocket.recv()
        except ConnectionClosed:
            self.online.clear()
            raise
        frame = _frame_of(message)
        if frame[0] == 2 and len(frame) > 2:
            self.tally.commands[str(frame[2])] += 1
        elif frame[0] == 4:
            self.tally.calls_errored += 1
        return message


def _frame_of(message: str | bytes) -> list:
    try:
        frame = json.loads(message)
    except ValueError:
        return [None]
    return frame if isinstance(frame, list) and frame else [None]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Session:
    connector_id: int
    id_tag: str
    charge: Charge
    transaction_id: int | None = None
    stop_reason: str | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def stop(self, reason: str) -> None:
        self.stop_reason = self.stop_reason or reason
        self.wake.set()


@dataclass
class Connector:
    connector_id: int
    status: str = "Available"
    register_wh: int = 0
    session: Session | None = None
    reservation: tuple[int, datetime] | None = None  # (reservationId, expiryDate)
    operative: bool = True
    becomes_operative: bool | None = None  # a ChangeAvailability Scheduled until the session ends

    @property
    def reserved(self) -> bool:
        return self.reservation is not None and self.reservation[1] > datetime.now(UTC)

    @property
    def free(self) -> bool:
        return self.operative and self.session is None and not self.reserved


@dataclass
class Profile:
    """A charging profile the charger accepted, with the limit of its schedule's first period."""

    profile_id: int
    connector_id: int
    purpose: str
    stack_level: int
    transaction_id: int | None
    limit_w: float


class SimulatedCharger(ChargePoint):
    def __init__(self, charge_point_id: str, link: Link, behaviour: Behaviour, tally: Tally) -> None:
        super().__init__(charge_point_id, link, response_timeout=RESPONSE_TIMEOUT_SECONDS)
        self.link, self.behaviour, self.tally = link, behaviour, tally
        self.connectors = {n: Connector(n) for n in range(1, behaviour.connectors + 1)}
        self.meter_interval = behaviour.meter_interval
        self.heartbeat_interval = 300.0
        self.config: dict[str, tuple[str, bool]] = _configuration(behaviour)  # key -> (value, readonly)
        self.profiles: dict[int, Profile] = {}
        self.local_list_version = 0
        self.local_list: dict[str, dict] = {}
        self.closing = asyncio.Event()
        self._remote_starts: dict[str, int] = {}  # call uniqueId -> the connector a remote start got
        self._tasks: set[asyncio.Task] = set()

    # -- what the charger does of its own accord ------------------------------------------------

    async def run(self) -> None:
        """Boot, run the planned sessions, then stay `linger` seconds (or until closed) answering
        commands; remote-started sessions end before it returns."""
        await self.boot()
        heartbeats = asyncio.create_task(self._heartbeats())
        try:
            for number in range(self.behaviour.sessions):
                if self.closing.is_set():
                    break
                connector = await self._free_connector(preferred=number % len(self.connectors) + 1)
                if connector is not None:
                    await self.charge(connector, self.behaviour.id_tag, authorize=True)
            try:
                linger = self.behaviour.linger
                await asyncio.wait_for(self.closing.wait(), timeout=None if math.isinf(linger) else linger)
            except TimeoutError:
                pass
            self.close()
            while self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            heartbeats.cancel()

    def close(self) -> None:
        """Stop: open sessions end (reason Local), no new ones start."""
        self.closing.set()
        for connector in self.connectors.values():
            if connector.session is not None:
                connector.session.stop("Local")

    async def boot(self) -> None:
        while True:
            answer = await self.send(call.BootNotification(
                charge_point_model=self.behaviour.model, charge_point_vendor=self.behaviour.vendor,
                charge_point_serial_number=self.id[-25:], firmware_version="1.0.0"), must_arrive=True)
            if answer is not None and answer.status == "Accepted":
                self.heartbeat_interval = float(answer.interval) if answer.interval > 0 else self.heartbeat_interval
                self.config["HeartbeatInterval"] = (str(int(self.heartbeat_interval)), False)
                break
            if self.closing.is_set():
                return
            await asyncio.sleep(min(answer.interval if answer is not None and answer.interval > 0 else 5, 30))
        for connector in self.connectors.values():
            await self.report(connector)

    def reconnected(self) -> None:
        """A new connection after the old one dropped: boot again, as a charger does."""
        self._spawn(self.boot())

    async def charge(self, connector: Connector, id_tag: str, *, authorize: bool, reservation_id: int | None = None) -> None:
        """One session on `connector`, from Preparing to Available."""
        session = Session(connector.connector_id, id_tag, Charge(connector.register_wh, self.behaviour.energy_wh, self.behaviour.speed))
        connector.session = session
        try:
            if authorize:
                answer = await self.send(call.Authorize(id_tag=id_tag))
                if answer is None or answer.id_tag_info.get("status") != "Accepted":
                    self.tally.sessions_refused += 1
                    return
            await self.report(connector, "Preparing")
            started = await self.send(call.StartTransaction(
                connector_id=connector.connector_id, id_tag=id_tag, meter_start=connector.register_wh, timestamp=now(),
                reservation_id=reservation_id), must_arrive=True)
            if started is None:  # the central system never took it: no transaction to stop
                self.tally.sessions_refused += 1
                await self.report(connector, "Available")
                return
            session.transaction_id = started.transaction_id
            self.tally.sessions_started += 1
            if started.id_tag_info.get("status") != "Accepted":
                session.stop("DeAuthorized")
            else:
                await self.report(connector, "Charging")
            await self._meter(connector, session)
            await self.send(call.StopTransaction(
                meter_stop=session.charge.register_wh, timestamp=now(), transaction_id=session.transaction_id,
                reason=session.stop_reason or "EVDisconnected", id_tag=id_tag), must_arrive=True)
            self.tally.sessions_stopped += 1
            self.tally.energy_wh += session.charge.delivered_wh
            await self.report(connector, "Finishing")
        finally:
            connector.register_wh = session.charge.register_wh
            connector.session = None
            self._drop_profiles(lambda p: p.purpose == "TxProfile" and p.connector_id == connector.connector_id)
            if connector.becomes_operative is not None:
                connector.operative, connector.becomes_operative = connector.becomes_operative, None
            if connector.status != "Available" or not connector.operative:
                await self.report(connector)

    async def _meter(self, connector: Connector, session: Session) -> None:
        """MeterValues every interval until the session's energy is delivered or it is stopped."""
        loop = asyncio.get_running_loop()
        last = loop.time()
        while not session.charge.done and session.stop_reason is None:
            try:
                await asyncio.wait_for(session.wake.wait(), timeout=self.meter_interval)
            except TimeoutError:
                pass
            power = self.power(connector)
            session.charge.run(power, loop.time() - last)
            last = loop.time()
            await self.send(self._meter_values(connector, session, power), must_arrive=True)

    def _meter_values(self, connector: Connector, session: Session | None, power_w: float) -> call.MeterValues:
        register = session.charge.register_wh if session else connector.register_wh
        return call.MeterValues(
            connector_id=connector.connector_id, transaction_id=session.transaction_id if session else None,
            meter_value=[{"timestamp": now(), "sampledValue": [
                {"value": str(register), "context": "Sample.Periodic", "measurand": "Energy.Active.Import.Register",
                 "location": "Outlet", "unit": "Wh"},
                {"value": f"{power_w:.1f}", "context": "Sample.Periodic", "measurand": "Power.Active.Import",
                 "location": "Outlet", "unit": "W"},
            ]}])

    def power(self, connector: Connector) -> float:
        """What the car on `connector` draws now: the charger's maximum under the charging limit."""
        session = connector.session
        if session is None or session.transaction_id is None:
            return 0.0
        return drawn_power(self.behaviour.max_power_w, self.limit_w(connector.connector_id, session.transaction_id))

    def limit_w(self, connector_id: int, transaction_id: int | None) -> float | None:
        """The charging limit on a connector in W, as OCPP 1.6 stacks profiles: the transaction's
        TxProfile, else the connector's (or the charger's) TxDefaultProfile, both under the
        ChargePointMaxProfile; the highest stack level of each purpose counts."""
        def top(purpose: str, connector_ids: tuple[int, ...]) -> float | None:
            found = [p for p in self.profiles.values() if p.purpose == purpose and p.connector_id in connector_ids
                     and (p.transaction_id is None or p.transaction_id == transaction_id)]
            for connector_scope in connector_ids:  # a connector's own profile before the charger-wide one
                mine = [p for p in found if p.connector_id == connector_scope]
                if mine:
                    return max(mine, key=lambda p: p.stack_level).limit_w
            return None

        tx = top("TxProfile", (connector_id,)) if transaction_id is not None else None
        default = top("TxDefaultProfile", (connector_id, 0))
        ceiling = top("ChargePointMaxProfile", (0,))
        limits = [limit for limit in (tx if tx is not None else default, ceiling) if limit is not None]
        return min(limits) if limits else None

    async def report(self, connector: Connector, status: str | None = None) -> None:
        """StatusNotification of a connector: `status`, or what its state says."""
        if status is None:
            status = ("Unavailable" if not connector.operative else "Charging" if connector.session else
                      "Reserved" if connector.reserved else "Available")
        connector.status = status
        await self.send(call.StatusNotification(connector_id=connector.connector_id, error_code="NoError", status=status,
                                                timestamp=now()))

    async def send(self, payload: Any, *, must_arrive: bool = False) -> Any:
        """A call to the central system; its answer, or None when it answered a CallError or not at
        all. A transaction message (`must_arrive`) is sent again, also after a reconnection."""
        for attempt in itertools.count(1):
            if not self.link.online.is_set():
                if not must_arrive:  # a status or a heartbeat is not kept while offline
                    return None
                await self.link.online.wait()
            try:
                return await self.call(payload, suppress=False)
            except OCPPError as error:
                log.warning("%s: %s answered %s", self.id, type(payload).__name__, error)
            except TimeoutError:
                self.tally.calls_unanswered += 1
            except (ConnectionClosed, ConnectionError):
                pass
            if not must_arrive or attempt >= MESSAGE_ATTEMPTS:
                return None
            await asyncio.sleep(min(2 ** attempt / 4, 10))

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(max(self.heartbeat_interval, 1.0))
            await self.send(call.Heartbeat())

    async def _free_connector(self, preferred: int) -> Connector | None:
        """A free connector, the preferred one first; while none is (remote sessions, reservations,
        Inoperative), wait, unless closing."""
        while not self.closing.is_set():
            ordered = sorted(self.connectors.values(), key=lambda c: c.connector_id != preferred)
            free = next((c for c in ordered if c.free), None)
            if free is not None:
                return free
            await asyncio.sleep(self.meter_interval)
        return None

    def _spawn(self, work) -> None:
        """Work a handler starts after its answer went out (the library's reading loop must not wait for it)."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: %r", self.id, task.exception())

    def _drop_profiles(self, which) -> int:
        dropped = [profile_id for profile_id, profile in self.profiles.items() if which(profile)]
        for profile_id in dropped:
            del self.profiles[profile_id]
        return len(dropped)

    def _connector(self, connector_id: int | None) -> Connector | None:
        return self.connectors.get(connector_id) if connector_id is not None else None

    def _session_of(self, transaction_id: int) -> Session | None:
        return next((c.session for c in self.connectors.values() if c.session and c.session.transaction_id == transaction_id), None)

    # -- Core ----------------------------------------------------------------------------------

    @on(Action.change_availability)
    def on_change_availability(self, connector_id: int, type: str) -> call_result.ChangeAvailability:
        if connector_id != 0 and connector_id not in self.connectors:
            return call_result.ChangeAvailability(status="Rejected")
        operative = type == "Operative"
        affected = list(self.connectors.values()) if connector_id == 0 else [self.connectors[connector_id]]
        scheduled = False
        for connector in affected:
            if connector.session is not None:
                connector.becomes_operative, scheduled = operative, True
            elif connector.operative != operative:
                connector.operative = operative
                self._spawn(self.report(connector))
        return call_result.ChangeAvailability(status="Scheduled" if scheduled else "Accepted")

    @on(Action.change_configuration)
    def on_change_configuration(self, key: str, value: str) -> call_result.ChangeConfiguration:
        if key not in self.config:
            return call_result.ChangeConfiguration(status="NotSupported")
        current, readonly = self.config[key]
        if readonly or not _fits(current, value):
            return call_result.ChangeConfiguration(status="Rejected")
        self.config[key] = (value, False)
        if key == "HeartbeatInterval" and int(value) > 0:
            self.heartbeat_interval = float(value)
        if key == "MeterValueSampleInterval" and int(value) > 0:
            self.meter_interval = float(value)
        return call_result.ChangeConfiguration(status="Accepted")

    @on(Action.clear_cache)
    def on_clear_cache(self) -> call_result.ClearCache:
        return call_result.ClearCache(status="Accepted")

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, **_: Any) -> call_result.DataTransfer:
        return call_result.DataTransfer(status="UnknownVendorId")

    @on(Action.get_configuration)
    def on_get_configuration(self, key: list[str] | None = None) -> call_result.GetConfiguration:
        asked = key if key else list(self.config)
        known = [{"key": k, "readonly": self.config[k][1], "value": self.config[k][0]} for k in asked if k in self.config]
        unknown = [k for k in asked if k not in self.config]
        return call_result.GetConfiguration(configuration_key=known, unknown_key=unknown or None)

    @on(Action.remote_start_transaction)
    def on_remote_start_transaction(self, id_tag: str, call_unique_id: str, connector_id: int | None = None,
                                    charging_profile: dict | None = None) -> call_result.RemoteStartTransaction:
        if connector_id is not None:
            connector = self._connector(connector_id)
            connector = connector if connector is not None and connector.free else None
        else:
            connector = next((c for c in self.connectors.values() if c.free), None)
        if connector is None or self.closing.is_set():
            return call_result.RemoteStartTransaction(status="Rejected")
        connector.session = Session(connector.connector_id, id_tag, Charge(connector.register_wh, 0, self.behaviour.speed))
        self._remote_starts[call_unique_id] = connector.connector_id
        if charging_profile is not None:
            self._keep_profile(connector.connector_id, charging_profile)
        return call_result.RemoteStartTransaction(status="Accepted")

    @after(Action.remote_start_transaction)
    def after_remote_start_transaction(self, id_tag: str, call_unique_id: str, **_: Any) -> None:
        if call_unique_id not in self._remote_starts:  # it was Rejected
            return
        connector = self.connectors[self._remote_starts.pop(call_unique_id)]
        connector.session = None  # held for this start; charge() takes it now
        authorize = self.config["AuthorizeRemoteTxRequests"][0] == "true"
        self._spawn(self.charge(connector, id_tag, authorize=authorize))

    @on(Action.remote_stop_transaction)
    def on_remote_stop_transaction(self, transaction_id: int) -> call_result.RemoteStopTransaction:
        session = self._session_of(transaction_id)
        if session is None:
            return call_result.RemoteStopTransaction(status="Rejected")
        session.stop("Remote")
        return call_result.RemoteStopTransaction(status="Accepted")

    @on(Action.reset)
    def on_reset(self, type: str) -> call_result.Reset:
        return call_result.Reset(status="Accepted")

    @after(Action.reset)
    def after_reset(self, type: str) -> None:
        self._spawn(self._reboot("HardReset" if type == "Hard" else "SoftReset"))

    async def _reboot(self, reason: str) -> None:
        """Stop every session with the reset's reason, then boot again on the same connection."""
        for connector in self.connectors.values():
            if connector.session is not None:
                connector.session.stop(reason)
        while any(c.session is not None for c in self.connectors.values()):
            await asyncio.sleep(0.05)
        await self.boot()

    @on(Action.unlock_connector)
    def on_unlock_connector(self, connector_id: int) -> call_result.UnlockConnector:
        connector = self._connector(connector_id)
        if connector is None:
            return call_result.UnlockConnector(status="NotSupported")
        if connector.session is not None:
            connector.session.stop("UnlockCommand")
        return call_result.UnlockConnector(status="Unlocked")

    # -- Firmware Management -------------------------------------------------------------------

    @on(Action.get_diagnostics)
    def on_get_diagnostics(self, location: str, **_: Any) -> call_result.GetDiagnostics:
        return call_result.GetDiagnostics(file_name=f"{self.id}-diagnostics.log")

    @after(Action.get_diagnostics)
    def after_get_diagnostics(self, location: str, **_: Any) -> None:
        self._spawn(self._notify_each(call.DiagnosticsStatusNotification, ("Uploading", "Uploaded")))

    @on(Action.update_firmware)
    def on_update_firmware(self, location: str, retrieve_date: str, **_: Any) -> call_result.UpdateFirmware:
        return call_result.UpdateFirmware()

    @after(Action.update_firmware)
    def after_update_firmware(self, location: str, retrieve_date: str, **_: Any) -> None:
        self._spawn(self._notify_each(call.FirmwareStatusNotification, ("Downloading", "Downloaded", "Installing", "Installed")))

    async def _notify_each(self, notification, statuses: tuple[str, ...]) -> None:
        for status in statuses:
            await self.send(notification(status=status))
            await asyncio.sleep(min(self.meter_interval, 1.0))

    # -- Local Auth List Management ------------------------------------------------------------

    @on(Action.get_local_list_version)
    def on_get_local_list_version(self) -> call_result.GetLocalListVersion:
        return call_result.GetLocalListVersion(list_version=self.local_list_version)

    @on(Action.send_local_list)
    def on_send_local_list(self, list_version: int, update_type: str,
                           local_authorization_list: list[dict] | None = None) -> call_result.SendLocalList:
        entries = local_authorization_list or []
        if len(entries) > int(self.config["SendLocalListMaxLength"][0]):
            return call_result.SendLocalList(status="Failed")
        if update_type == "Differential" and list_version <= self.local_list_version:
            return call_result.SendLocalList(status="VersionMismatch")
        if update_type == "Full":
            self.local_list = {}
        for entry in entries:
            if entry.get("id_tag_info") is None:
                self.local_list.pop(entry["id_tag"], None)
            else:
                self.local_list[entry["id_tag"]] = entry["id_tag_info"]
        self.local_list_version = list_version
        return call_result.SendLocalList(status="Accepted")

    # -- Reservation ---------------------------------------------------------------------------

    @on(Action.reserve_now)
    def on_reserve_now(self, connector_id: int, expiry_date: str, id_tag: str, reservation_id: int,
                       **_: Any) -> call_result.ReserveNow:
        connector = self._connector(connector_id)
        if connector is None:
            return call_result.ReserveNow(status="Rejected")  # connector 0: ReserveConnectorZeroSupported is false
        if not connector.operative:
            return call_result.ReserveNow(status="Unavailable")
        if connector.session is not None or (connector.reserved and connector.reservation[0] != reservation_id):
            return call_result.ReserveNow(status="Occupied")
        connector.reservation = (reservation_id, _expiry(expiry_date))
        self._spawn(self.report(connector))
        return call_result.ReserveNow(status="Accepted")

    @on(Action.cancel_reservation)
    def on_cancel_reservation(self, reservation_id: int) -> call_result.CancelReservation:
        for connector in self.connectors.values():
            if connector.reserved and connector.reservation[0] == reservation_id:
                connector.reservation = None
                self._spawn(self.report(connector))
                return call_result.CancelReservation(status="Accepted")
        return call_result.CancelReservation(status="Rejected")

    # -- Smart Charging ------------------------------------------------------------------------

    @on(Action.set_charging_profile)
    def on_set_charging_profile(self, connector_id: int, cs_charging_profiles: dict) -> call_result.SetChargingProfile:
        purpose = cs_charging_profiles["charging_profile_purpose"]
        connector = self._connector(connector_id)
        if connector_id != 0 and connector is None:
            return call_result.SetChargingProfile(status="Rejected")
        if purpose == "ChargePointMaxProfile" and connector_id != 0:
            return call_result.SetChargingProfile(status="Rejected")
        if purpose == "TxProfile":
            session = connector.session if connector is not None else None
            wanted = cs_charging_profiles.get("transaction_id")
            if session is None or session.transaction_id is None or (wanted is not None and wanted != session.transaction_id):
                return call_result.SetChargingProfile(status="Rejected")
        unit = cs_charging_profiles["charging_schedule"]["charging_rate_unit"]
        if ("Power" if unit == "W" else "Current") not in self.config["ChargingScheduleAllowedChargingRateUnit"][0]:
            return call_result.SetChargingProfile(status="Rejected")
        self._keep_profile(connector_id, cs_charging_profiles)
        return call_result.SetChargingProfile(status="Accepted")

    def _keep_profile(self, connector_id: int, profile: dict) -> None:
        """Record a profile, replacing one of the same id or of the same purpose and stack level
        on the connector, as OCPP 1.6 says."""
        schedule = profile["charging_schedule"]
        first = min(schedule["charging_schedule_period"], key=lambda p: p["start_period"])
        kept = Profile(
            profile_id=profile["charging_profile_id"], connector_id=connector_id, purpose=profile["charging_profile_purpose"],
            stack_level=profile["stack_level"], transaction_id=profile.get("transaction_id"),
            limit_w=limit_in_watts(float(first["limit"]), schedule["charging_rate_unit"], first.get("number_phases")),
        )
        self._drop_profiles(lambda p: p.profile_id == kept.profile_id or (
            p.connector_id == connector_id and p.purpose == kept.purpose and p.stack_level == kept.stack_level))
        self.profiles[kept.profile_id] = kept

    @on(Action.clear_charging_profile)
    def on_clear_charging_profile(self, id: int | None = None, connector_id: int | None = None,
                                  charging_profile_purpose: str | None = None,
                                  stack_level: int | None = None) -> call_result.ClearChargingProfile:
        cleared = self._drop_profiles(lambda p: (id is None or p.profile_id == id)
                                      and (connector_id is None or p.connector_id == connector_id)
                                      and (charging_profile_purpose is None or p.purpose == charging_profile_purpose)
                                      and (stack_level is None or p.stack_level == stack_level))
        return call_result.ClearChargingProfile(status="Accepted" if cleared else "Unknown")

    @on(Action.get_composite_schedule)
    def on_get_composite_schedule(self, connector_id: int, duration: int,
                                  charging_rate_unit: str | None = None) -> call_result.GetCompositeSchedule:
        if connector_id != 0 and connector_id not in self.connectors:
            return call_result.GetCompositeSchedule(status="Rejected")
        session = self.connectors[connector_id].session if connector_id else None
        limit = self.limit_w(connector_id, session.transaction_id if session else None)
        watts = drawn_power(self.behaviour.max_power_w * (1 if connector_id else len(self.connectors)), limit)
        unit = charging_rate_unit or ("W" if "Power" in self.config["ChargingScheduleAllowedChargingRateUnit"][0] else "A")
        return call_result.GetCompositeSchedule(
            status="Accepted", connector_id=connector_id, schedule_start=now(),
            charging_schedule={"duration": duration, "chargingRateUnit": unit,
                               "chargingSchedulePeriod": [{"startPeriod": 0, "limit": watts_in(unit, watts)}]})

    # -- Remote Trigger ------------------------------------------------------------------------

    @on(Action.trigger_message)
    def on_trigger_message(self, requested_message: str, connector_id: int | None = None) -> call_result.TriggerMessage:
        if connector_id is not None and connector_id != 0 and connector_id not in self.connectors:
            return call_result.TriggerMessage(status="Rejected")
        return call_result.TriggerMessage(status="Accepted")

    @after(Action.trigger_message)
    def after_trigger_message(self, requested_message: str, connector_id: int | None = None) -> None:
        if not connector_id or connector_id in self.connectors:  # else it was Rejected
            self._spawn(self._triggered(requested_message, connector_id))

    async def _triggered(self, message: str, connector_id: int | None) -> None:
        connectors = [self.connectors[connector_id]] if connector_id else list(self.connectors.values())
        if message == "BootNotification":
            await self.send(call.BootNotification(charge_point_model=self.behaviour.model, charge_point_vendor=self.behaviour.vendor))
        elif message == "Heartbeat":
            await self.send(call.Heartbeat())
        elif message == "StatusNotification":
            for connector in connectors:
                await self.report(connector, connector.status)
        elif message == "MeterValues":
            for connector in connectors:
                await self.send(self._meter_values(connector, connector.session, self.power(connector)))
        elif message == "DiagnosticsStatusNotification":
            await self.send(call.DiagnosticsStatusNotification(status="Idle"))
        elif message == "FirmwareStatusNotification":
            await self.send(call.FirmwareStatusNotification(status="Idle"))


def _configuration(behaviour: Behaviour) -> dict[str, tuple[str, bool]]:
    """The configuration keys the charger reports (GetConfiguration) and takes (ChangeConfiguration)."""
    readonly = {
        "ChargeProfileMaxStackLevel": "8", "ChargingScheduleAllowedChargingRateUnit": behaviour.rate_unit,
        "ChargingScheduleMaxPeriods": "24", "GetConfigurationMaxKeys": "50", "LocalAuthListMaxLength": "100",
        "MaxChargingProfilesInstalled": "10", "NumberOfConnectors": str(behaviour.connectors),
        "ReserveConnectorZeroSupported": "false", "SendLocalListMaxLength": "100", "SupportedFeatureProfiles": FEATURE_PROFILES,
    }
    writable = {
        "AuthorizeRemoteTxRequests": "false", "ClockAlignedDataInterval": "0", "ConnectionTimeOut": "60",
        "HeartbeatInterval": "300", "LocalAuthListEnabled": "true", "LocalAuthorizeOffline": "true", "LocalPreAuthorize": "false",
        "MeterValueSampleInterval": str(max(round(behaviour.meter_interval), 1)), "MeterValuesSampledData": MEASURANDS,
        "ResetRetries": "3", "StopTransactionOnEVSideDisconnect": "true", "StopTransactionOnInvalidId": "true",
        "TransactionMessageAttempts": str(MESSAGE_ATTEMPTS), "TransactionMessageRetryInterval": "10",
        "UnlockConnectorOnEVSideDisconnect": "true",
    }
    return {**{k: (v, True) for k, v in readonly.items()}, **{k: (v, False) for k, v in writable.items()}}


def _expiry(text: str) -> datetime:
    """A reservation's expiryDate; one that cannot be read lasts 15 minutes."""
    try:
        expiry = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC) + timedelta(minutes=15)
    return expiry if expiry.tzinfo else expiry.replace(tzinfo=UTC)


def _fits(current: str, value: str) -> bool:
    """Whether `value` is of the kind the key holds: a whole number, a boolean, or any text."""
    if current.isdigit():
        return value.isdigit()
    if current in ("true", "false"):
        return value in ("true", "false")
    return True
