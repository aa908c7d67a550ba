"""The shapes of the ingest service's responses and request bodies, for /openapi.json."""
from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from services.ingest.intake import MAX_BATCH
from shared.domain import AuditFields
from shared.events import EVENT_TYPES, UnknownEvent
from shared.openapi import Body, ResponseModel, ref


class AuthAllowed(ResponseModel):
    allowed: Literal[True]
    ocppVersion: str


class AuthDenied(ResponseModel):
    allowed: Literal[False]


class EventAccepted(ResponseModel):
    accepted: Literal[True]
    type: str
    eventId: str


class BatchAccepted(ResponseModel):
    accepted: int
    duplicates: int
    eventIds: list[str]


class RegisteredCharger(ResponseModel):
    chargePointId: str
    isActive: bool
    siteId: UUID | None
    createdAt: datetime
    updatedAt: datetime




_EVENT_MODELS = (*EVENT_TYPES.values(), UnknownEvent)
_EVENT = {"anyOf": [ref(model) for model in _EVENT_MODELS],
          "description": "one charger event; an unknown `type` is accepted and archived"}
EVENTS_BODY = Body(
    {"anyOf": [_EVENT, {"type": "array", "items": _EVENT, "minItems": 1, "maxItems": MAX_BATCH}]}, _EVENT_MODELS,
)


class Operator(ResponseModel):
    name: str
    role: Literal["viewer", "operator", "finance", "admin"]
    createdAt: datetime


class CreatedOperator(Operator):
    token: str  # shown this once; only its hash is kept


class AuditEntry(ResponseModel, AuditFields):
    """An entry of the trail, as `GET /v1/audit` answers it."""
