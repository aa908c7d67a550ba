"""Request bodies and queries of the commands service: a command envelope, its payload checked
against the OCPP 1.6 schema of its type, then against the few limits this CPMS adds to it."""
from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Annotated, Any, Literal

import orjson
import pydantic
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from shared.events import ChargePointId, IdTag
from shared.http import Problem, errors_of
from shared.ocpp_commands import CSMS_ACTIONS, payload_problems, payload_schema
from shared.pagination import PageQuery

# Every action a central system may send a charger in OCPP 1.6's six feature profiles.
CommandType = Literal[CSMS_ACTIONS]  # type: ignore[valid-type]


class CommandStatus(StrEnum):
    """Where a command's delivery stands: Queued until a dispatcher sends it, Sent while the gateway
    has it, then Acked or Failed for good."""

    QUEUED = "Queued"
    SENT = "Sent"
    ACKED = "Acked"
    FAILED = "Failed"


FINAL_STATUSES = frozenset({CommandStatus.ACKED, CommandStatus.FAILED})
OPEN_STATUSES = (CommandStatus.QUEUED, CommandStatus.SENT)


class _Stricter(BaseModel):
    """What a payload must be beyond its OCPP 1.6 schema: the fields named here; the schema checks
    every field, these included."""

    model_config = ConfigDict(extra="allow", strict=True)


class RemoteStartTransaction(_Stricter):
    idTag: IdTag  # not empty
    connectorId: Annotated[StrictInt, Field(ge=1, le=1000)] | None = None  # a real connector, never 0


class ChangeConfiguration(_Stricter):
    key: Annotated[str, StringConstraints(min_length=1)]


STRICTER: dict[str, type[_Stricter]] = {
    "RemoteStartTransaction": RemoteStartTransaction,
    "ChangeConfiguration": ChangeConfiguration,
}


class CommandRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: CommandType
    chargePointId: ChargePointId
    idempotencyKey: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    payload: dict[str, Any]


class NewCommand(BaseModel):
    """A valid command request, its payload as the operator sent it."""

    model_config = ConfigDict(frozen=True)
    type: CommandType
    chargePointId: str
    idempotencyKey: str
    payload: dict[str, Any]

    @property
    def fingerprint(self) -> str:
        """What "the same body" means for a repeated idempotency key."""
        canonical = orjson.dumps(
            {"type": self.type, "chargePointId": self.chargePointId, "payload": self.payload}, option=orjson.OPT_SORT_KEYS
        )
        return hashlib.sha256(canonical).hexdigest()


def new_command(request: CommandRequest) -> NewCommand:
    """Check the payload against its type: a 400 problem naming each field (`loc` under `payload`)
    that breaks the OCPP 1.6 schema or this CPMS's own limits."""
    problems = [{"loc": ["payload", *p["loc"]], "msg": p["msg"]} for p in payload_problems(request.type, request.payload)]
    if request.type in STRICTER:
        try:
            STRICTER[request.type].model_validate(request.payload)
        except pydantic.ValidationError as exc:
            named = {tuple(p["loc"]) for p in problems}
            problems += [p for p in errors_of(exc, ("payload",)) if tuple(p["loc"]) not in named]
    if problems:
        raise Problem(400, "Invalid request", f"the payload is not a valid {request.type} of OCPP 1.6", errors=problems)
    return NewCommand(type=request.type, chargePointId=request.chargePointId, idempotencyKey=request.idempotencyKey,
                      payload=request.payload)


def command_request_body() -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The request body as /openapi.json describes it: one variant per type, each naming its
    payload's OCPP 1.6 schema. Returns the body's schema and the named schemas it refers to."""
    envelope = CommandRequest.model_json_schema()["properties"]
    named: dict[str, dict[str, Any]] = {}
    for action in CSMS_ACTIONS:
        named[f"{action}Payload"] = payload_schema(action)
        named[f"{action}Command"] = {
            "type": "object",
            "title": f"{action}Command",
            "required": ["type", "chargePointId", "idempotencyKey", "payload"],
            "additionalProperties": False,
            "properties": {
                "type": {"const": action},
                "chargePointId": envelope["chargePointId"],
                "idempotencyKey": envelope["idempotencyKey"],
                "payload": {"$ref": f"#/components/schemas/{action}Payload"},
            },
        }
    schema = {
        "oneOf": [{"$ref": f"#/components/schemas/{action}Command"} for action in CSMS_ACTIONS],
        "discriminator": {"propertyName": "type",
                          "mapping": {action: f"#/components/schemas/{action}Command" for action in CSMS_ACTIONS}},
    }
    return schema, named


class CreateQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    wait: Annotated[float, Field(gt=0, le=30, allow_inf_nan=False)] | None = None


class ListQuery(PageQuery):
    model_config = ConfigDict(extra="forbid")
    chargePointId: ChargePointId | None = None
    status: CommandStatus | None = None
