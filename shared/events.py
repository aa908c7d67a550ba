"""Charger events as the reference OCPP gateway sends them, and as ingest publishes them.

The models accept the gateway's exact JSON: zero meter readings omitted, sample values as the
charger's strings, defaults for measurand and unit. `parse_event` picks the model by `type`;
an unknown type is kept as `UnknownEvent` (accepted and archived, applied nowhere)."""
from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, ClassVar, Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from shared import envelope

ChargePointId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:*@+-]+$")]
ShortText = Annotated[str, StringConstraints(max_length=255)]
IdTag = Annotated[str, StringConstraints(min_length=1, max_length=20)]

ConnectorStatus = Literal[
    "Available", "Preparing", "Charging", "SuspendedEVSE", "SuspendedEV",
    "Finishing", "Reserved", "Unavailable", "Faulted",
]
ChargePointErrorCode = Literal[
    "ConnectorLockFailure", "EVCommunicationError", "GroundFailure", "HighTemperature", "InternalError",
    "LocalListConflict", "NoError", "OtherError", "OverCurrentFailure", "PowerMeterFailure",
    "PowerSwitchFailure", "ReaderFailure", "ResetFailure", "UnderVoltage", "OverVoltage", "WeakSignal",
]

ENERGY_REGISTER = "Energy.Active.Import.Register"
ENERGY_INTERVAL = "Energy.Active.Import.Interval"
_WH_PER_UNIT = {"Wh": Decimal(1), "kWh": Decimal(1000)}


class ChargerEvent(BaseModel):
    """Fields every event has. Fields the gateway adds that we do not know are kept as they came."""

    model_config = ConfigDict(extra="allow", frozen=True)
    type: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    chargePointId: ChargePointId
    ts: AwareDatetime | None = None
    eventId: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None

    @field_validator("ts", mode="before")
    @classmethod
    def _rfc3339_text(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, str):
            raise ValueError("ts must be an RFC 3339 string such as 2026-11-25T10:00:00Z")
        return value

    @field_validator("ts")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return value.astimezone(UTC) if value is not None else None


class UnknownEvent(ChargerEvent):
    known: ClassVar[bool] = False


class ChargerBooted(ChargerEvent):
    type: Literal["ChargerBooted"]
    vendor: ShortText
    model: ShortText
    firmwareVersion: ShortText | None = None
    ocppVersion: ShortText = "1.6"


class ChargerHeartbeat(ChargerEvent):
    type: Literal["ChargerHeartbeat"]


class ConnectorStatusChanged(ChargerEvent):
    type: Literal["ConnectorStatusChanged"]
    connectorId: Annotated[int, Field(ge=0, le=1000)]
    status: ConnectorStatus
    errorCode: ChargePointErrorCode = "NoError"


class TransactionStarted(ChargerEvent):
    type: Literal["TransactionStarted"]
    connectorId: Annotated[int, Field(ge=0, le=1000)]
    transactionId: int
    idTag: IdTag | None = None
    meterStartWh: Annotated[int, Field(ge=0)] = 0


class Sample(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    measurand: ShortText = ENERGY_REGISTER
    unit: ShortText = "Wh"
    value: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    context: ShortText | None = None
    phase: ShortText | None = None
    location: ShortText | None = None

    @field_validator("value", mode="before")
    @classmethod
    def _decimal_string(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("value must be a number or a numeric string")
        if isinstance(value, int | float):
            value = str(value)
        if isinstance(value, str):
            try:
                if not Decimal(value).is_finite():
                    raise ValueError("value must be finite")
            except InvalidOperation:
                raise ValueError("value must be a number or a numeric string") from None
        return value

    def energy_wh(self) -> Decimal | None:
        """The reading in Wh when it is an energy measurand in Wh or kWh; else None."""
        factor = _WH_PER_UNIT.get(self.unit)
        if factor is None or self.measurand not in (ENERGY_REGISTER, ENERGY_INTERVAL):
            return None
        return Decimal(self.value) * factor


class MeterSample(ChargerEvent):
    type: Literal["MeterSample"]
    transactionId: int | None = None
    connectorId: Annotated[int, Field(ge=0, le=1000)] | None = None
    samples: Annotated[list[Sample], Field(min_length=1, max_length=1000)]


class TransactionEnded(ChargerEvent):
    type: Literal["TransactionEnded"]
    transactionId: int
    meterStopWh: Annotated[int, Field(ge=0)] | None = None
    reason: ShortText | None = None
    idTag: IdTag | None = None


class CommandAck(ChargerEvent):
    type: Literal["CommandAck"]
    commandType: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    uniqueId: Annotated[str, StringConstraints(min_length=1, max_length=128)]


EVENT_TYPES: dict[str, type[ChargerEvent]] = {
    cls.model_fields["type"].annotation.__args__[0]: cls  # the Literal's one value
    for cls in (ChargerBooted, ChargerHeartbeat, ConnectorStatusChanged, TransactionStarted,
                MeterSample, TransactionEnded, CommandAck)
}


def parse_event(data: Any) -> ChargerEvent:
    """Validate one event; raises pydantic.ValidationError naming the field."""
    kind = data.get("type") if isinstance(data, dict) else None
    model = EVENT_TYPES.get(kind, UnknownEvent) if isinstance(kind, str) else UnknownEvent  # a list or object is no key
    return model.model_validate(data)


def derive_event_id(raw: dict[str, Any]) -> str:
    """The idempotency key of an event sent without one: a hash of its canonical JSON."""
    canonical = orjson.dumps({k: v for k, v in raw.items() if k != "eventId"}, option=orjson.OPT_SORT_KEYS)
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def routing_key(event: ChargerEvent) -> str:
    """Where ingest publishes an event: in the envelopes of `charger.events`, except the types a
    consumer binds to by name (the commands service takes `charger.CommandAck` alone)."""
    return "charger.CommandAck" if isinstance(event, CommandAck) else envelope.EVENTS_ROUTING_KEY
