"""Charge points for the site power limit tests: real OCPP 1.6J clients (the `ocpp` library) that
keep the charging profiles they receive as a charger does (a TxProfile for its transaction over
the TxDefaultProfile, until cleared), draw what their car wants under them (or ignore them),
report that power in their MeterValues, and let a watcher add up, at every change, the shares in
force on the site."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action

from tests.gateway.conftest import basic

VOLTS = 230


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class SiteWatch:
    """Adds up the shares in force on the site's charging transactions each time a charger's
    profiles or transactions change, and keeps every moment the sum passed `limit_w`."""

    limit_w: int
    cap_w: int
    chargers: list[LoadCharger] = field(default_factory=list)
    over: list[tuple[int, int]] = field(default_factory=list)  # (sum, limit) at each moment it passed
    highest_w: int = 0

    def in_force_w(self) -> int:
        return sum(charger.share_w(connector_id) for charger in self.chargers for connector_id in charger.transactions)

    def check(self) -> None:
        total = self.in_force_w()
        self.highest_w = max(self.highest_w, total)
        if total > self.limit_w:
            self.over.append((total, self.limit_w))


class LoadCharger(ChargePoint):
    """One connector's worth of charger per connector id; `car_w` is what a car draws unlimited."""

    def __init__(self, charge_point_id: str, connection: Any, watch: SiteWatch, *, rate_unit: str = "Power",
                 answer: str = "Accepted", ignores_profiles: bool = False, car_w: int = 11_000) -> None:
        super().__init__(charge_point_id, connection, response_timeout=20)
        self.watch, self.rate_unit, self.answer, self.ignores_profiles, self.car_w = watch, rate_unit, answer, ignores_profiles, car_w
        self.profiles: dict[tuple[int, str], dict] = {}  # (connector, purpose) -> the profile in force
        self.received: list[dict] = []  # every SetChargingProfile, as sent
        self.clearings: list[dict] = []  # every ClearChargingProfile, as sent
        self.clearings_answered = asyncio.Event()  # clear it to hold the answers to clearings
        self.clearings_answered.set()
        self.transactions: dict[int, int] = {}  # connector -> its transaction
        self.energy_wh = 0
        watch.chargers.append(self)

    @on(Action.get_configuration)
    def on_get_configuration(self, key: list[str] | None = None) -> call_result.GetConfiguration:
        return call_result.GetConfiguration(configuration_key=[
            {"key": "ChargingScheduleAllowedChargingRateUnit", "readonly": True, "value": self.rate_unit}])

    @on(Action.set_charging_profile)
    def on_set_charging_profile(self, connector_id: int, cs_charging_profiles: dict) -> call_result.SetChargingProfile:
        self.received.append({"connectorId": connector_id, **cs_charging_profiles})
        if self.answer == "Accepted":
            self.profiles[(connector_id, cs_charging_profiles["charging_profile_purpose"])] = cs_charging_profiles
            self.watch.check()
        return call_result.SetChargingProfile(status=self.answer)

    @on(Action.clear_charging_profile)
    async def on_clear_charging_profile(self, id: int | None = None, connector_id: int | None = None,
                                        charging_profile_purpose: str | None = None,
                                        stack_level: int | None = None) -> call_result.ClearChargingProfile:
        """Drops every profile that matches all the criteria given; Unknown when none did."""
        self.clearings.append({"id": id, "connectorId": connector_id, "purpose": charging_profile_purpose, "stackLevel": stack_level})
        await self.clearings_answered.wait()
        matching = [key for key, profile in self.profiles.items()
                    if (id is None or profile["charging_profile_id"] == id)
                    and (connector_id is None or key[0] == connector_id)
                    and (charging_profile_purpose is None or key[1] == charging_profile_purpose)
                    and (stack_level is None or profile["stack_level"] == stack_level)]
        for key in matching:
            del self.profiles[key]
        self.watch.check()
        return call_result.ClearChargingProfile(status="Accepted" if matching else "Unknown")

    def limit_w(self, connector_id: int) -> float | None:
        """The limit on a connector: the TxProfile of its transaction, else the connector's or the
        charger's TxDefaultProfile, in W (a limit in A on its phases at 230 V)."""
        tx = self.profiles.get((connector_id, "TxProfile"))
        if tx is not None and tx.get("transaction_id") != self.transactions.get(connector_id):
            tx = None
        profile = tx or self.profiles.get((connector_id, "TxDefaultProfile")) or self.profiles.get((0, "TxDefaultProfile"))
        if profile is None:
            return None
        schedule = profile["charging_schedule"]
        period = schedule["charging_schedule_period"][0]
        limit = float(period["limit"])
        return limit if schedule["charging_rate_unit"] == "W" else limit * VOLTS * period.get("number_phases", 3)

    def share_w(self, connector_id: int) -> int:
        limit = self.limit_w(connector_id)
        return self.watch.cap_w if limit is None else int(limit)

    def drawn_w(self, connector_id: int) -> int:
        limit = self.limit_w(connector_id)
        return self.car_w if self.ignores_profiles or limit is None else int(min(self.car_w, limit))

    async def boot(self) -> None:
        await self.call(call.BootNotification(charge_point_model="Load", charge_point_vendor="Test"))
        await self.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Available"))

    async def start_session(self, connector_id: int = 1) -> int:
        started = await self.call(call.StartTransaction(connector_id=connector_id, id_tag="LOAD-TAG", meter_start=self.energy_wh,
                                                        timestamp=now()))
        self.transactions[connector_id] = started.transaction_id
        self.watch.check()
        await self.call(call.StatusNotification(connector_id=connector_id, error_code="NoError", status="Charging"))
        return started.transaction_id

    async def report(self, connector_id: int = 1, *, watts: int | None = None) -> int:
        """A MeterValues of the transaction with what the car draws now (or `watts`)."""
        drawn = self.drawn_w(connector_id) if watts is None else watts
        self.energy_wh += drawn // 60
        await self.call(call.MeterValues(connector_id=connector_id, transaction_id=self.transactions[connector_id], meter_value=[{
            "timestamp": now(), "sampled_value": [
                {"value": str(self.energy_wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                {"value": str(drawn), "measurand": "Power.Active.Import", "unit": "W"}]}]))
        return drawn

    async def stop_session(self, connector_id: int = 1) -> None:
        transaction_id = self.transactions.pop(connector_id)
        self.profiles.pop((connector_id, "TxProfile"), None)  # a TxProfile ends with its transaction
        self.watch.check()
        await self.call(call.StopTransaction(meter_stop=self.energy_wh, timestamp=now(), transaction_id=transaction_id))
        await self.call(call.StatusNotification(connector_id=connector_id, error_code="NoError", status="Available"))


@contextlib.asynccontextmanager
async def plugged(url: str, charge_point_id: str, secret: str, watch: SiteWatch, **behaviour: Any) -> AsyncIterator[LoadCharger]:
    """A charger connected at `url` (the gateway's /ocpp16/{id}), booted, serving its socket."""
    async with websockets.connect(f"{url}/{charge_point_id}", subprotocols=["ocpp1.6"],
                                  additional_headers=basic(charge_point_id, secret)) as socket:
        charger = LoadCharger(charge_point_id, socket, watch, **behaviour)
        serving = asyncio.create_task(charger.start())
        try:
            await charger.boot()
            yield charger
        finally:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await serving
