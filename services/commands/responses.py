"""The shapes of the commands service's responses and request bodies, for /openapi.json."""
from __future__ import annotations

from collections.abc import Mapping
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

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> dict[str, Any]:
        return cls.body(
            commandId=row["command_id"],
            type=row["type"],
            chargePointId=row["charge_point_id"],
            idempotencyKey=row["idempotency_key"],
            payload=row["payload"],
            status=row["status"],
            response=row["response"],
            error=row["error"],
            attempts=row["attempts"],
            gatewayCommandId=row["gateway_command_id"],
            ackedAt=row["acked_at"],
            expiresAt=row["expires_at"],
            createdAt=row["created_at"],
            updatedAt=row["updated_at"],
        )

