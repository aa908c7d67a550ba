"""The reference OCPP gateway and its chargers as they really are (read from its source, and
CONTRACT section 1), to drive the CPMS the way production does:
- one request per event, the events of one charger one at a time, in the charger's order;
- no retries: an event that does not get a 2xx is lost for good (`ReferenceGateway.lost`);
- timestamps with whole seconds: the charger's own clock, or the gateway's (boot, heartbeat);
- transaction ids from the gateway's clock: `unix seconds mod 10^8`;
- `meterStartWh` / `meterStopWh` omitted when 0, MeterValues and StopTransaction without
  connectorId, StopTransaction without idTag, `ocppVersion` "1.6J", values as the charger's strings.
"""
from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support import Api


class Clock:
    """A wall clock with whole seconds that a test may set, freeze or move."""

    def __init__(self, now: datetime | None = None) -> None:
        self._fixed = now

    def now(self) -> datetime:
        return (self._fixed or datetime.now(UTC)).replace(microsecond=0)

    def set(self, when: datetime) -> None:
        self._fixed = when

    def advance(self, seconds: float) -> None:
        self._fixed = self.now() + timedelta(seconds=seconds)


def rfc3339(when: datetime) -> str:
    """Go's time.RFC3339 of a UTC time: whole seconds and a literal Z."""
    return when.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ReferenceGateway:
    api: Api
    clock: Clock = field(default_factory=Clock)
    lost: list[dict] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)  # of the events the CPMS took
    _lanes: dict[str, asyncio.Lock] = field(default_factory=lambda: defaultdict(asyncio.Lock))

    async def post(self, event: dict) -> bool:
        """Forward one event before answering the charger; False (and lost) on anything but 2xx."""
        async with self._lanes[event["chargePointId"]]:
            status, body = await self.api.gateway("POST", "/v1/gateway/events", event)
        self.answers.append(status)
        if not 200 <= status < 300:
            self.lost.append(event)
            return False
        self.event_ids.append(body["eventId"])
        return True

    def transaction_id(self) -> int:
        return int(self.clock.now().timestamp()) % 100_000_000


@dataclass
class ChargePoint:
    """One OCPP 1.6J charger behind the reference gateway. `clock` is the charger's own clock
    (it may run wrong, or sit at 1970 after a reboot)."""

    gateway: ReferenceGateway
    charge_point_id: str
    clock: Clock = field(default_factory=Clock)

    def _ts(self) -> str:
        return rfc3339(self.clock.now())

    async def _send(self, event: dict[str, Any]) -> bool:
        return await self.gateway.post({"type": event.pop("type"), "chargePointId": self.charge_point_id, **event})

    async def boot(self, vendor: str = "Alfen", model: str = "Eve Single", firmware: str | None = "6.1.2") -> bool:
        event = {"type": "ChargerBooted", "vendor": vendor, "model": model}
        if firmware:
            event["firmwareVersion"] = firmware
        return await self._send({**event, "ocppVersion": "1.6J", "ts": rfc3339(self.gateway.clock.now())})

    async def heartbeat(self) -> bool:
        return await self._send({"type": "ChargerHeartbeat", "ts": rfc3339(self.gateway.clock.now())})

    async def status(self, connector: int, status: str, error: str = "NoError") -> bool:
        return await self._send({"type": "ConnectorStatusChanged", "connectorId": connector, "status": status,
                                 "errorCode": error, "ts": self._ts()})

    async def start(self, connector: int, id_tag: str, meter_start_wh: int = 0) -> int:
        """StartTransaction: the gateway makes the id from its clock and answers Accepted itself."""
        tx = self.gateway.transaction_id()
        event = {"type": "TransactionStarted", "connectorId": connector, "transactionId": tx, "idTag": id_tag}
        if meter_start_wh:
            event["meterStartWh"] = meter_start_wh
        await self._send({**event, "ts": self._ts()})
        return tx

    async def meter(self, tx: int, value: str, *, measurand: str = "Energy.Active.Import.Register", unit: str = "Wh") -> bool:
        return await self._send({"type": "MeterSample", "transactionId": tx, "ts": self._ts(),
                                 "samples": [{"measurand": measurand, "unit": unit, "value": value}]})

    async def stop(self, tx: int, meter_stop_wh: int = 0, reason: str = "Local") -> bool:
        event = {"type": "TransactionEnded", "transactionId": tx}
        if meter_stop_wh:
            event["meterStopWh"] = meter_stop_wh
        return await self._send({**event, "reason": reason, "ts": self._ts()})
