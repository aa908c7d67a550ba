"""The shapes of the commands service's responses and request bodies, for /openapi.json."""
from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from services.commands.models import CommandStatus, CommandType
from shared.openapi import ResponseModel


class Command(ResponseModel):
    commandId: UUID
    type: CommandType
    chargePointId: str
    idempotencyKey: str
    payload: dict[str, Any]
    status: CommandStatus
    response: dict[str, Any] | None
    error: str | None
    attempts: int
    gatewayCommandId: str | None
    ackedAt: datetime | None
    expiresAt: datetime
    createdAt: datetime
    updatedAt: datetime
