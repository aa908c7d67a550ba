"""Charger events as the reference OCPP gateway sends them, and as ingest publishes them.

Ingest refuses only what cannot be attributed (CONTRACT section 1, "Lossless ingest") and passes
everything else on as sent, with what it added: `eventId`, `receivedAt`, `receiveOrder` (the
charger's events in the order ingest received them), `effectiveTs` (the time the services use:
the charger's `ts`, or the receipt time when that is missing, unreadable or implausible) and
`anomalies`. So the models below are lenient: a field a charger got wrong reads as None, and the
consumer leaves it out of the state it would have changed."""
from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import orjson
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, Strict, StringConstraints

from shared import envelope

ChargePointId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:*@+-]+$")]
IdTag = Annotated[str, StringConstraints(min_length=1, max_length=20)]

CONNECTOR_STATUSES = frozenset({
    "Available", "Preparing", "Charging", "SuspendedEVSE", "SuspendedEV",
    "Finishing", "Reserved", "Unavailable", "Faulted",
})
ERROR_CODES = frozenset({
    "ConnectorLockFailure", "EVCommunicationError", "GroundFailure", "HighTemperature", "InternalError",
    "LocalListConflict", "NoError", "OtherError", "OverCurrentFailure", "PowerMeterFailure",
    "PowerSwitchFailure", "ReaderFailure", "ResetFailure", "UnderVoltage", "OverVoltage", "WeakSignal",
})
ID_TAG_MAX = 20  # OCPP 1.6 IdToken: CiString20

ENERGY_REGISTER = "Energy.Active.Import.Register"
ENERGY_INTERVAL = "Energy.Active.Import.Interval"
POWER_IMPORT = "Power.Active.Import"
_WH_PER_UNIT = {"Wh": Decimal(1), "kWh": Decimal(1000)}
_W_PER_UNIT = {"W": Decimal(1), "kW": Decimal(1000)}
MAX_ENERGY_WH = Decimal(10) ** 15  # beyond any real meter: a reading this large is a charger's mistake
_LAST_MICROSECOND = timedelta(microseconds=999_999)


def start_instant(started_at: datetime) -> datetime:
    """The instant a start stands for, when its tariff and its token's status are looked up.
    Chargers and the reference gateway stamp whole seconds, so a start at 10:00:00 happened
    somewhere in that second: it is judged by what was in force at the end of it (CONTRACT
    section 4), and a tariff created, or a token blocked, at 10:00:00.4 applies to it."""
    return started_at + _LAST_MICROSECOND if started_at.microsecond == 0 else started_at


def _text(value: Any) -> str | None:
    """A text field as the services keep it: strings as sent, anything else (a charger's mistake,
    flagged by ingest) as absent."""
    return value if isinstance(value, str) else None


Text = Annotated[str | None, BeforeValidator(_text)]
# What ingest refuses when it is not a JSON integer: a message that has one anyway is poison.
Integer = Annotated[int, Strict()]


class ChargerEvent(BaseModel):
    """Fields every event has. Fields the gateway adds that we do not know are kept as they came."""

    model_config = ConfigDict(extra="allow", frozen=True)
    type: str
    chargePointId: str
    ts: Any = Field(None, description="RFC 3339 as the charger or gateway sent it")
    eventId: Text = None
    # set by ingest
    receivedAt: AwareDatetime | None = None
    receiveOrder: int = 0
    effectiveTs: AwareDatetime | None = None
    anomalies: tuple[str, ...] = ()

    @property
    def at(self) -> datetime:
        """When it happened, as the services order it: `effectiveTs` (ingest always sets it)."""
        when = self.effectiveTs or self.receivedAt
        return when.astimezone(UTC) if when is not None else datetime.now(UTC)

    @property
    def received_at(self) -> datetime:
        """When ingest received it, by our clock (its effective time if it never went through ingest)."""
        return self.receivedAt.astimezone(UTC) if self.receivedAt is not None else self.at

    @property
    def clock_skew_seconds(self) -> float | None:
        """The charger's offset from our clock this event shows, when the charger stamped it and its
        ts was plausible (a boot or a heartbeat shows the gateway's clock, not the charger's)."""
        if self.type in GATEWAY_STAMPED or self.ts is None or self.receivedAt is None or self.effectiveTs is None \
                or TS_ANOMALIES & set(self.anomalies):
            return None
        return (self.effectiveTs - self.receivedAt).total_seconds()


class UnknownEvent(ChargerEvent):
    pass


class ChargerBooted(ChargerEvent):
    vendor: Text = None
    model: Text = None
    firmwareVersion: Text = None
    ocppVersion: Text = None


class ChargerHeartbeat(ChargerEvent):
    pass


class ConnectorStatusChanged(ChargerEvent):
    connectorId: Integer | None = None
    status: Text = Field(None, description="an OCPP 1.6 ChargePointStatus; another value is flagged and applied nowhere")
    errorCode: Text = None


class TransactionStarted(ChargerEvent):
    connectorId: Integer | None = None
    transactionId: Integer
    idTag: Text = None
    meterStartWh: Integer = 0


class MeterSample(ChargerEvent):
    transactionId: Integer | None = None
    connectorId: Integer | None = None
    samples: list[Any] = Field(default_factory=list, description="[{measurand, unit, value, context?, phase?, location?}]")


class TransactionEnded(ChargerEvent):
    transactionId: Integer
    meterStopWh: Integer | None = None
    reason: Text = None
    idTag: Text = None


class CommandAck(ChargerEvent):
    commandType: Text = None
    uniqueId: Text = None


class FirmwareStatus(ChargerEvent):
    """FirmwareStatusNotification, as the CPMS's own gateway reports it."""

    status: Text = None


class DiagnosticsStatus(ChargerEvent):
    """DiagnosticsStatusNotification, as the CPMS's own gateway reports it."""

    status: Text = None


class ChargerConnected(ChargerEvent):
    """The charger's WebSocket opened at the CPMS's own gateway."""

    remoteAddr: Text = None


class ChargerDisconnected(ChargerEvent):
    """The charger's WebSocket closed (not when a newer connection of the charger replaced it)."""

    reason: Text = None


EVENT_TYPES: dict[str, type[ChargerEvent]] = {
    cls.__name__: cls
    for cls in (ChargerBooted, ChargerHeartbeat, ConnectorStatusChanged, TransactionStarted,
                MeterSample, TransactionEnded, CommandAck, FirmwareStatus, DiagnosticsStatus,
                ChargerConnected, ChargerDisconnected)
}

# Events whose ts is the gateway's clock, not the charger's (CONTRACT section 1, "Two clocks"): OCPP
# 1.6 gives BootNotification, Heartbeat, DataTransfer and the firmware and diagnostics status
# notifications no timestamp, and a connection is the gateway's own news. A rule that compares one
# of them with a charger's event compares receive order, never ts.
GATEWAY_STAMPED = frozenset({"ChargerBooted", "ChargerHeartbeat", "ChargerConnected", "ChargerDisconnected",
                             "DataTransfer", "FirmwareStatus", "DiagnosticsStatus"})

# Anomalies that mean the event's ts was not used.
TS_ANOMALIES = frozenset({"unreadable_ts", "implausible_ts"})


def type_label(kind: Any) -> str:
    """The metric label of an event type: unknown types are unbounded, so they share one."""
    return kind if kind in EVENT_TYPES else "unknown"


def parse_event(data: dict[str, Any]) -> ChargerEvent:
    """Read one published event; raises pydantic.ValidationError only for what ingest refuses."""
    return EVENT_TYPES.get(data.get("type"), UnknownEvent).model_validate(data)


def sample_energy_wh(sample: Any) -> tuple[str, Decimal] | None:
    """(measurand, Wh) of a sample that is a total energy reading in Wh or kWh, else None. Per-phase
    readings are left out (the ladder works on the charger's totals), and so is a value that is not
    a finite number within a meter's range."""
    if not isinstance(sample, dict) or sample.get("phase"):
        return None
    measurand = sample.get("measurand") or ENERGY_REGISTER
    factor = _WH_PER_UNIT.get(sample.get("unit") or "Wh")
    if factor is None or measurand not in (ENERGY_REGISTER, ENERGY_INTERVAL):
        return None
    value = sample_number(sample.get("value"))
    if value is None:
        return None
    return measurand, value * factor


def sample_power_w(sample: Any) -> Decimal | None:
    """The W of a sample that is the charger's total `Power.Active.Import` (not one phase's), else None."""
    if not isinstance(sample, dict) or sample.get("phase") or sample.get("measurand") != POWER_IMPORT:
        return None
    factor = _W_PER_UNIT.get(sample.get("unit") or "W")
    value = sample_number(sample.get("value"))
    return None if factor is None or value is None or value < 0 else value * factor


def sample_number(value: Any) -> Decimal | None:
    """A sample value as a number (the charger's string or a JSON number), None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        number = Decimal(value.strip() if isinstance(value, str) else str(value))
    except InvalidOperation:
        return None
    if not number.is_finite() or abs(number) >= MAX_ENERGY_WH:
        return None
    return number


def derive_event_id(raw: dict[str, Any]) -> str:
    """The idempotency key of an event sent without one: a hash of its canonical JSON."""
    canonical = orjson.dumps({k: v for k, v in raw.items() if k != "eventId"}, option=orjson.OPT_SORT_KEYS)
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def routing_key(kind: str) -> str:
    """Where ingest publishes an event: in the envelopes of `charger.events`, except the types a
    consumer binds to by name (the commands service takes `charger.CommandAck` alone)."""
    return "charger.CommandAck" if kind == "CommandAck" else envelope.EVENTS_ROUTING_KEY
