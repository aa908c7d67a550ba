"""The OCPP 1.6 actions a central system may send a charger, and each payload checked against
its OCPP 1.6 JSON schema (the `ocpp` library's), so the commands service and the gateway refuse
the same commands with the same words."""
from __future__ import annotations

import decimal
import functools
import json
import re
from importlib import resources
from typing import Any

from jsonschema import Draft4Validator, ValidationError
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
    problems = [problem for error in _validator(action).iter_errors(as_decimals(payload)) for problem in _named(error)]
    return sorted(problems, key=lambda e: [str(p) for p in e["loc"]])


def _named(error: ValidationError) -> list[dict[str, Any]]:
    """The problems of one schema error, each at the field it is about: a missing or an unexpected
    property is named by its own path, not by the object's that holds it."""
    at = [*error.absolute_path]
    if error.validator == "required":
        missing = [name for name in error.validator_value if error.message == f"{name!r} is a required property"]
        return [{"loc": [*at, name], "msg": "Field required"} for name in missing] or [{"loc": at, "msg": error.message}]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = error.schema.get("properties", {})
        return [{"loc": [*at, name], "msg": "Extra inputs are not permitted"} for name in error.instance if name not in known]
    # Numbers were read as Decimal for `multipleOf`: say 7400.15, not Decimal('7400.15').
    return [{"loc": at, "msg": re.sub(r"Decimal\('([^']*)'\)", r"\1", error.message)}]


@functools.cache
def _schema_text(action: str) -> str:
    return (resources.files("ocpp.v16") / "schemas" / f"{action}.json").read_text(encoding="utf-8-sig")


def payload_schema(action: str) -> dict[str, Any]:
    """The OCPP 1.6 JSON schema of `action`'s payload, as a JSON Schema 2020-12 document (OpenAPI
    3.1) can embed it: the same rules, without the draft-04 header."""
    if action not in CSMS_ACTIONS:
        raise ValueError(f"not a central system action of OCPP 1.6: {action}")
    schema = json.loads(_schema_text(action))
    for header in ("$schema", "id"):
        schema.pop(header, None)
    return schema
