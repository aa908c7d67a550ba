"""Query parameters of the sessions service's routes."""
from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StringConstraints, field_validator, model_validator

from shared.events import ID_TAG_MAX
from shared.pagination import PageQuery

_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no", ""}


class FinalizeQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    force: StrictBool = False

    @field_validator("force", mode="before")
    @classmethod
    def _flag(cls, value: object) -> object:
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise ValueError("force must be true or false")
        return value


class SessionQuery(PageQuery):
    """Filters of the network's session list; `from`/`to` bound startedAt (`to` excluded)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    chargePointId: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    siteId: UUID | None = None
    status: Literal["Active", "Finalized"] | None = None
    idTag: Annotated[str, StringConstraints(min_length=1, max_length=ID_TAG_MAX)] | None = None
    started_from: AwareDatetime | None = Field(None, alias="from")
    started_to: AwareDatetime | None = Field(None, alias="to")

    @model_validator(mode="after")
    def _a_period(self) -> SessionQuery:
        if self.started_from and self.started_to and self.started_to <= self.started_from:
            raise ValueError("`to` must be after `from`")
        return self


class ChargerQuery(PageQuery):
    """Filters of the fleet view; `q` is a substring of chargePointId, in any case."""

    model_config = ConfigDict(extra="forbid")
    siteId: UUID | None = None
    online: bool | None = None
    registered: bool | None = None
    q: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None

    @field_validator("online", "registered", mode="before")
    @classmethod
    def _flag(cls, value: object) -> object:
        if isinstance(value, str) and value not in ("true", "false"):
            raise ValueError("must be true or false")
        return value
