"""Request bodies and queries of the commands service: a command envelope, then its payload
checked against the OCPP 1.6 limits of its type."""
from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Annotated, Any, Literal

import orjson
import pydantic
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, StringConstraints

from shared.events import ChargePointId, IdTag
from shared.http import validation_problem
from shared.pagination import PageQuery

CommandType = Literal["RemoteStartTransaction", "RemoteStopTransaction", "Reset", "ChangeConfiguration"]


class CommandStatus(StrEnum):
    """Where a command's delivery stands: Queued until a dispatcher sends it, Sent while the gateway
    has it, then Acked or Failed for good."""

    QUEUED = "Queued"
    SENT = "Sent"
    ACKED = "Acked"
    FAILED = "Failed"


FINAL_STATUSES = frozenset({CommandStatus.ACKED, CommandStatus.FAILED})
OPEN_STATUSES = (CommandStatus.QUEUED, CommandStatus.SENT)


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RemoteStartTransaction(_Payload):
    idTag: IdTag
    connectorId: Annotated[StrictInt, Field(ge=1, le=1000)] | None = None


class RemoteStopTransaction(_Payload):
    transactionId: StrictInt


class Reset(_Payload):
    type: Literal["Hard", "Soft"]


class ChangeConfiguration(_Payload):
    key: Annotated[StrictStr, StringConstraints(min_length=1, max_length=50)]
    value: Annotated[StrictStr, StringConstraints(max_length=500)]


PAYLOADS: dict[str, type[_Payload]] = {
    "RemoteStartTransaction": RemoteStartTransaction,
    "RemoteStopTransaction": RemoteStopTransaction,
    "Reset": Reset,
    "ChangeConfiguration": ChangeConfiguration,
}


class CommandRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: CommandType
    chargePointId: ChargePointId
    idempotencyKey: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    payload: dict[str, Any]


class NewCommand(BaseModel):
    """A valid command request: the payload checked and normalised for its type."""

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
    """Check the payload against its type; a 400 problem with `loc` under `payload` otherwise."""
    try:
        payload = PAYLOADS[request.type].model_validate(request.payload)
    except pydantic.ValidationError as exc:
        raise validation_problem(exc, loc_prefix=("payload",)) from None
    return NewCommand(
        type=request.type, chargePointId=request.chargePointId, idempotencyKey=request.idempotencyKey,
        payload=payload.model_dump(exclude_none=True),
    )


class CreateQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    wait: Annotated[float, Field(gt=0, le=30, allow_inf_nan=False)] | None = None


class ListQuery(PageQuery):
    model_config = ConfigDict(extra="forbid")
    chargePointId: ChargePointId | None = None
    status: CommandStatus | None = None
