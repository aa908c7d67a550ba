"""Request bodies of the ingest service's routes."""
from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, StringConstraints

from shared.events import ChargePointId

Secret = Annotated[str, StringConstraints(min_length=8, max_length=128)]


class AuthRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    presentedSecret: Annotated[str, StringConstraints(max_length=256)]
    remoteAddr: Annotated[str, StringConstraints(max_length=256)] | None = None
    certFingerprint: Annotated[str, StringConstraints(max_length=256)] | None = None


class RegisterCharger(BaseModel):
    model_config = ConfigDict(extra="forbid")
    chargePointId: ChargePointId
    secret: Secret
    siteId: UUID | None = None


class RotateSecret(BaseModel):
    model_config = ConfigDict(extra="forbid")
    secret: Secret


class SetActive(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    isActive: bool
