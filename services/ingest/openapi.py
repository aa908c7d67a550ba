"""The ingest service's operations and response shapes, for /openapi.json."""
from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from services.ingest.events import MAX_BATCH
from services.ingest.models import AuthRequest, RegisterCharger, RotateSecret, SetActive
from shared.events import EVENT_TYPES, UnknownEvent
from shared.openapi import Body, Fragment, Operation, ResponseModel, ref


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

FRAGMENT = Fragment("ingest", (
    Operation("POST", "/v1/gateway/chargers/{chargePointId}/auth", "Check a charger's secret during its handshake", "gateway",
              {200: AuthAllowed, 401: AuthDenied}, body=AuthRequest, errors=(429,)),
    Operation("POST", "/v1/gateway/events", "One charger event or a batch; 202 once the broker confirmed them", "gateway",
              {202: (Body({"anyOf": [ref(EventAccepted), ref(BatchAccepted)]}, (EventAccepted, BatchAccepted)),)},
              body=EVENTS_BODY),
    Operation("POST", "/v1/chargers", "Register a charger", "admin", {201: RegisteredCharger}, body=RegisterCharger, errors=(409,)),
    Operation("PUT", "/v1/chargers/{chargePointId}/secret", "Rotate a charger's secret", "admin",
              {200: RegisteredCharger}, body=RotateSecret),
    Operation("PUT", "/v1/chargers/{chargePointId}/active", "Switch a charger on or off", "admin",
              {200: RegisteredCharger}, body=SetActive),
), "Gateway intake and charger registration")
