"""Query parameters of the sessions service's routes."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, StrictBool, field_validator

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
