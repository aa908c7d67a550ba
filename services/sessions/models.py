"""Query parameters of the sessions service's routes."""
from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StringConstraints, field_validator, model_validator

from shared.errors import DomainError
from shared.events import ID_TAG_MAX, ChargePointId
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


PrintableIdTag = Annotated[str, StringConstraints(min_length=1, max_length=ID_TAG_MAX, pattern=r"^[\x20-\x7e]+$")]


class TokenFields(BaseModel):
    """A token as `PUT /v1/tokens/{idTag}` replaces it: what is left out takes its default."""

    model_config = ConfigDict(extra="forbid")
    status: Literal["Accepted", "Blocked", "Expired"] = "Accepted"
    expiresAt: AwareDatetime | None = None
    parentIdTag: PrintableIdTag | None = None
    siteIds: Annotated[list[UUID], Field(max_length=1000)] | None = None
    maxConcurrentSessions: Annotated[int, Field(ge=1, le=1000)] | None = 1
    note: Annotated[str, StringConstraints(max_length=500)] | None = None

    def columns(self) -> dict[str, object]:
        return {"status": self.status, "expires_at": self.expiresAt, "parent_id_tag": self.parentIdTag,
                "site_ids": sorted(set(self.siteIds)) if self.siteIds is not None else None,
                "max_concurrent_sessions": self.maxConcurrentSessions, "note": self.note}

    def check_parent(self, id_tag: str) -> None:
        if self.parentIdTag is not None and self.parentIdTag.lower() == id_tag.lower():
            raise DomainError("a token cannot be its own parent",
                              errors=[{"loc": ["parentIdTag"], "msg": "must differ from idTag"}])


class NewToken(TokenFields):
    idTag: PrintableIdTag


class ReplacedToken(TokenFields):
    idTag: PrintableIdTag | None = None  # the token as GET showed it may be sent back: it must be this one


class TokenQuery(PageQuery):
    model_config = ConfigDict(extra="forbid")
    status: Literal["Accepted", "Blocked", "Expired"] | None = None
    q: Annotated[str, StringConstraints(min_length=1, max_length=ID_TAG_MAX)] | None = None


class AuthorizeRequest(BaseModel):
    """What a gateway asks when a charger sends Authorize (or before it accepts a StartTransaction).
    The idTag is the charger's: any string is answered (one OCPP cannot hold is Invalid), never refused."""

    model_config = ConfigDict(extra="ignore")
    chargePointId: ChargePointId
    idTag: str
    connectorId: Annotated[int, Field(ge=0, le=1000)] | None = None


# OCPI 2.2.1 mod_locations: ConnectorType, ConnectorFormat and PowerType (sections 8.4.4-8.4.6).
ConnectorStandard = Literal[
    "CHADEMO", "CHAOJI", "DOMESTIC_A", "DOMESTIC_B", "DOMESTIC_C", "DOMESTIC_D", "DOMESTIC_E", "DOMESTIC_F",
    "DOMESTIC_G", "DOMESTIC_H", "DOMESTIC_I", "DOMESTIC_J", "DOMESTIC_K", "DOMESTIC_L", "GBT_AC", "GBT_DC",
    "IEC_60309_2_single_16", "IEC_60309_2_three_16", "IEC_60309_2_three_32", "IEC_60309_2_three_64",
    "IEC_62196_T1", "IEC_62196_T1_COMBO", "IEC_62196_T2", "IEC_62196_T2_COMBO", "IEC_62196_T3A", "IEC_62196_T3C",
    "NEMA_5_20", "NEMA_6_30", "NEMA_6_50", "NEMA_10_30", "NEMA_10_50", "NEMA_14_30", "NEMA_14_50",
    "PANTOGRAPH_BOTTOM_UP", "PANTOGRAPH_TOP_DOWN", "TESLA_R", "TESLA_S",
]
ConnectorFormat = Literal["SOCKET", "CABLE"]
PowerType = Literal["AC_1_PHASE", "AC_2_PHASE", "AC_2_PHASE_SPLIT", "AC_3_PHASE", "DC"]


class ConnectorSpecs(BaseModel):
    """What a connector is, as the operator describes it (PUT replaces every field; one left out is
    unknown). Voltage in V, amperage in A, power in W, as OCPI counts them."""

    model_config = ConfigDict(extra="forbid")
    standard: ConnectorStandard | None = None
    format: ConnectorFormat | None = None
    powerType: PowerType | None = None
    maxVoltage: Annotated[int, Field(gt=0, le=2000)] | None = None
    maxAmperage: Annotated[int, Field(gt=0, le=2000)] | None = None
    maxElectricPower: Annotated[int, Field(gt=0, le=2_000_000)] | None = None

    def columns(self) -> dict[str, object]:
        return {"standard": self.standard, "format": self.format, "power_type": self.powerType,
                "max_voltage": self.maxVoltage, "max_amperage": self.maxAmperage,
                "max_electric_power": self.maxElectricPower}
