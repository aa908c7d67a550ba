"""The commands service's operations and response shapes, for /openapi.json."""
from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from services.commands.models import CommandRequest, CommandStatus, CommandType, CreateQuery, ListQuery
from shared.openapi import Fragment, Operation, ResponseModel, page_of


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


FRAGMENT = Fragment("commands", (
    Operation("POST", "/v1/commands", "Queue a command for a charger (?wait=SECONDS for its outcome)", "admin",
              {200: Command, 202: Command}, body=CommandRequest, query=CreateQuery, errors=(409,)),
    Operation("GET", "/v1/commands", "Commands, newest first", "admin", {200: page_of(Command)}, query=ListQuery),
    Operation("GET", "/v1/commands/{commandId}", "One command", "admin", {200: Command}),
), "Commands for chargers, delivered through the gateway")
