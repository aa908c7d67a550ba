"""Request bodies of the ingest service's routes."""
from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from shared.events import ChargePointId
from shared.pagination import PageQuery

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


OperatorName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]


class CreateOperator(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: OperatorName
    role: Literal["viewer", "operator", "finance", "admin"]


class AuditQuery(PageQuery):
    """Filters of the audit trail; `from`/`to` bound `at` (`to` excluded)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    entity: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    entityId: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    actor: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    at_from: AwareDatetime | None = Field(None, alias="from")
    at_to: AwareDatetime | None = Field(None, alias="to")
