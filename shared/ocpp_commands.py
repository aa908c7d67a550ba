"""The OCPP 1.6 actions a central system may send a charger, and each payload checked against
its OCPP 1.6 JSON schema (the `ocpp` library's), so the commands service and the gateway refuse
the same commands with the same words."""
from __future__ import annotations

import decimal
import json
from typing import Any

from jsonschema import Draft4Validator
from ocpp.messages import MessageType, get_validator

CSMS_ACTIONS: tuple[str, ...] = (
    # Core
    "ChangeAvailability", "ChangeConfiguration", "ClearCache", "DataTransfer", "GetConfiguration",
    "RemoteStartTransaction", "RemoteStopTransaction", "Reset", "UnlockConnector",
    # Firmware Management
    "GetDiagnostics", "UpdateFirmware",
    # Local Auth List Management
    "GetLocalListVersion", "SendLocalList",
    # Reservation
    "ReserveNow", "CancelReservation",
    # Smart Charging
    "SetChargingProfile", "ClearChargingProfile", "GetCompositeSchedule",
    # Remote Trigger
    "TriggerMessage",
)


def _validator(action: str) -> Draft4Validator:
    # Decimal for numbers: a charging limit's `multipleOf: 0.1` holds for 21.4 only in decimal.
    return get_validator(MessageType.Call, action, "1.6", parse_float=decimal.Decimal)


def as_decimals(payload: Any) -> Any:
    """The payload with every JSON number that has a fraction read as a Decimal."""
    return json.loads(json.dumps(payload), parse_float=decimal.Decimal)


def payload_problems(action: str, payload: Any) -> list[dict[str, Any]]:
    """Where `payload` breaks the OCPP 1.6 schema of `action`: `[{"loc": [...], "msg": ...}]`, with
    `loc` the path inside the payload; empty when it is valid. `action` must be one of CSMS_ACTIONS."""
    if action not in CSMS_ACTIONS:
        raise ValueError(f"not a central system action of OCPP 1.6: {action}")
    errors = _validator(action).iter_errors(as_decimals(payload))
    return sorted(({"loc": [*error.absolute_path], "msg": error.message} for error in errors), key=lambda e: [str(p) for p in e["loc"]])
