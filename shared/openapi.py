"""The OpenAPI 3.1 description of the public API, assembled from the operations each service
declares as its routes (`ServiceSpec.api`). Request schemas come from the pydantic models
the handlers parse with; response schemas from small pydantic models of each response shape."""
from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from shared.docs_page import ASSETS as DOCS_ASSETS

REF = "#/components/schemas/{model}"
PROBLEM_JSON = "application/problem+json"
# Who may call a route: the gateway (its key), an operator of at least this role (CONTRACT
# section 10: viewer < operator < finance < admin), or anyone (the operational routes).
Role = Literal["viewer", "operator", "finance", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "finance", "admin")
# "ocpi": an OCPI partner's credentials token (`Authorization: Token ...`), checked by the ocpi
# service's own middleware; its answers, errors included, are OCPI envelopes the operation lists.
Auth = Literal["gateway", "viewer", "operator", "finance", "admin", "none", "ocpi"]
SECURITY = {"gateway": [{"gatewayKey": []}], "none": [], "ocpi": [{"ocpiToken": []}], **{role: [{"operatorToken": []}] for role in ROLES}}

# Path parameters, by name, with the schema the handlers accept (anything else is a 404 or a 400).
PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "chargePointId": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"^[A-Za-z0-9._:*@+-]+$"},
    "sessionId": {"type": "string", "format": "uuid"},
    "siteId": {"type": "string", "format": "uuid"},
    "settlementId": {"type": "string", "format": "uuid"},
    "tariffId": {"type": "string", "format": "uuid"},
    "commandId": {"type": "string", "format": "uuid"},
    "partnerId": {"type": "string", "format": "uuid"},
    "asset": {"type": "string", "enum": sorted(DOCS_ASSETS)},
}

STATUS_TEXT = {
    204: "Done; no body",
    400: "The body, the query or a path parameter is not valid",
    401: "Missing or wrong bearer key",
    403: "The operator's role may not do this",
    404: "No such resource",
    409: "Conflicts with the resource's current state",
    413: "The body exceeds the size limit",
    415: "The body is not application/json",
    429: "Too many failed attempts; see Retry-After",
    422: "Well formed, but what it names did not work (an OCPI partner that did not answer as one)",
    503: "A dependency (database or broker) is unavailable; see Retry-After",
}


class ResponseModel(BaseModel):
    """Base of the response models: the shape of an answer, for the document and for the answer
    itself (`body`), so the two cannot drift apart."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def body(cls, **fields: Any) -> dict[str, Any]:
        """An answer of this shape: exactly the model's fields, or a TypeError naming the difference."""
        if fields.keys() != cls.model_fields.keys():
            raise TypeError(f"{cls.__name__} answer differs from its model in {sorted(fields.keys() ^ cls.model_fields.keys())}")
        return fields

    @classmethod
    def from_row(cls, row: Mapping[str, Any], **given: Any) -> dict[str, Any]:
        """An answer from a database row: each field from the column named as it is in snake_case
        (`chargePointId` from `charge_point_id`), except the fields `given`."""
        return cls.body(**{name: given[name] if name in given else row[column] for name, column in _columns(cls).items()})


@functools.cache
def _columns(model: type[ResponseModel]) -> dict[str, str]:
    return {name: re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower() for name in model.model_fields}


@dataclass(frozen=True)
class Body:
    """A response (or request) body other than one pydantic model: a raw JSON schema with the
    models and the named raw schemas it refers to, or another media type."""

    schema: dict[str, Any]
    models: tuple[type[BaseModel], ...] = ()
    media_type: str = "application/json"
    schemas: Mapping[str, dict[str, Any]] = field(default_factory=dict)


Content = type[BaseModel] | Body


@dataclass(frozen=True)
class Operation:
    """One route: the aiohttp route is made from `method`, `path` and `handler`, the OpenAPI
    operation from the rest."""

    method: str
    path: str
    handler: Callable[..., Awaitable[Any]]
    summary: str
    auth: Auth
    responses: Mapping[int, Content | tuple[Content, ...] | None]
    body: Content | None = None
    query: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()  # problem responses beyond the ones every such operation has
    tag: str = ""
    # The audit trail of a write (shared/access.py): what it changes looked like before (an async
    # `before(request)` giving the entity's JSON, or None for none), and answer fields never recorded.
    before: Callable[..., Awaitable[Any]] | None = None
    redact: tuple[str, ...] = ()


@dataclass(frozen=True)
class Fragment:
    """A service's part of the document."""

    tag: str
    operations: tuple[Operation, ...]
    description: str = ""


def ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def page_of(model: type[BaseModel]) -> Body:
    """The list envelope `{"items": [...], "nextCursor": ...}` of `model`."""
    return Body({
        "type": "object",
        "required": ["items", "nextCursor"],
        "additionalProperties": False,
        "properties": {
            "items": {"type": "array", "items": ref(model)},
            "nextCursor": {"type": ["string", "null"], "description": "opaque; pass as `cursor` for the next page"},
        },
    }, (model,))


class ProblemError(BaseModel):
    loc: list[str | int]
    msg: str


class Problem(BaseModel):
    """An RFC 9457 problem document; `errors` lists validation failures."""

    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    detail: str
    errors: list[ProblemError] | None = None


class _Components:
    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def add(self, model: type[BaseModel], mode: Literal["validation", "serialization"]) -> dict[str, str]:
        schema = model.model_json_schema(ref_template=REF, mode=mode)
        for name, sub in schema.pop("$defs", {}).items():
            self._put(name, sub)
        self._put(model.__name__, schema)
        return ref(model)

    def _put(self, name: str, schema: dict[str, Any]) -> None:
        if self.schemas.setdefault(name, schema) != schema:
            raise ValueError(f"two different schemas are named {name}")

    def content(self, content: Content, mode: Literal["validation", "serialization"]) -> tuple[str, dict[str, Any]]:
        if isinstance(content, Body):
            for model in content.models:
                self.add(model, mode)
            for name, schema in content.schemas.items():
                self._put(name, schema)
            return content.media_type, content.schema
        return "application/json", self.add(content, mode)


def _path_parameters(path: str) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "path", "required": True, "schema": PATH_PARAMETERS.get(name, {"type": "string"})}
        for name in re.findall(r"{(\w+)}", path)
    ]


def _query_parameters(model: type[BaseModel], components: _Components) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF, mode="validation")
    for name, sub in schema.pop("$defs", {}).items():
        components._put(name, sub)
    required = set(schema.get("required", []))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        prop = {k: v for k, v in prop.items() if k != "title"}
        # An optional parameter is simply left out: `null` is not a query value.
        if "anyOf" in prop and {"type": "null"} in prop["anyOf"]:
            options = [o for o in prop.pop("anyOf") if o != {"type": "null"}]
            prop.pop("default", None)
            prop = {**prop, **options[0]} if len(options) == 1 else {**prop, "anyOf": options}
        parameters.append({"name": name, "in": "query", "required": name in required, "schema": prop})
    return parameters


def _error_statuses(operation: Operation) -> list[int]:
    if operation.auth == "ocpi":
        return []  # every answer an envelope, listed by the operation itself
    statuses = set(operation.errors)
    if operation.auth != "none":
        statuses |= {401, 503}
    if operation.auth in ROLES:
        statuses.add(403)
    if operation.body is not None:
        statuses |= {400, 413, 415}
    if operation.query is not None:
        statuses.add(400)
    if "{" in operation.path:
        statuses.add(404)
    return sorted(statuses - set(operation.responses))


def _operation(operation: Operation, components: _Components) -> dict[str, Any]:
    problem = components.add(Problem, "serialization")
    doc: dict[str, Any] = {
        "operationId": f"{operation.method.lower()}{re.sub(r'[^A-Za-z0-9]+', '_', operation.path)}".rstrip("_"),
        "summary": operation.summary + (f" (role: {operation.auth})" if operation.auth in ROLES else ""),
        "security": SECURITY[operation.auth],
        "responses": {},
    }
    if operation.tag:
        doc["tags"] = [operation.tag]
    parameters = _path_parameters(operation.path)
    if operation.query is not None:
        parameters += _query_parameters(operation.query, components)
    if parameters:
        doc["parameters"] = parameters
    if operation.body is not None:
        media_type, schema = components.content(operation.body, "validation")
        doc["requestBody"] = {"required": True, "content": {media_type: {"schema": schema}}}
    for status, contents in sorted(operation.responses.items()):
        contents = contents if isinstance(contents, tuple) else (contents,)
        response: dict[str, Any] = {"description": STATUS_TEXT.get(status, "Success")}
        for content in contents:
            if content is not None:  # None: an answer without a body (204)
                media_type, schema = components.content(content, "serialization")
                response.setdefault("content", {})[media_type] = {"schema": schema}
        doc["responses"][str(status)] = response
    for status in _error_statuses(operation):
        doc["responses"][str(status)] = {"description": STATUS_TEXT[status], "content": {PROBLEM_JSON: {"schema": problem}}}
    # A missing key is a problem document also where the operation's own 401 is something else.
    if operation.auth not in ("none", "ocpi"):
        doc["responses"]["401"]["content"].setdefault(PROBLEM_JSON, {"schema": problem})
    return doc


def build_document(fragments: Iterable[Fragment], *, title: str = "CPMS core API", version: str = "1") -> dict[str, Any]:
    """One OpenAPI 3.1 document for the operations of `fragments`, in their order."""
    components = _Components()
    paths: dict[str, dict[str, Any]] = {}
    tags = []
    for fragment in fragments:
        tags.append({"name": fragment.tag, "description": fragment.description} if fragment.description else {"name": fragment.tag})
        for operation in fragment.operations:
            method = operation.method.lower()
            if method in paths.get(operation.path, {}):
                raise ValueError(f"{operation.method} {operation.path} is described twice")
            tagged = dataclasses.replace(operation, tag=operation.tag or fragment.tag)
            paths.setdefault(operation.path, {})[method] = _operation(tagged, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Charge point management system core. Gateway routes take the gateway key, operator "
                           "routes an operator's token of the role they name, both as `Authorization: Bearer <key>`. "
                           "Errors are RFC 9457 problem documents.",
        },
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.schemas.items())),
            "securitySchemes": {
                "gatewayKey": {"type": "http", "scheme": "bearer", "description": "CPMS_API_KEY: the gateway's key, for /v1/gateway/*"},
                "operatorToken": {"type": "http", "scheme": "bearer", "description": (
                    "An operator's token (`cpms operator create`, `POST /v1/operators`), or CPMS_ADMIN_TOKEN (the "
                    "bootstrap admin), for every other /v1 route; each route names the least role it needs "
                    "(viewer < operator < finance < admin)")},
                "ocpiToken": {"type": "apiKey", "in": "header", "name": "Authorization", "description": (
                    "OCPI 2.2.1: `Token <base64 of the credentials token>` (the token as it is is accepted too); "
                    "token A only for versions, version details and registering (credentials), token C for the rest")},
            },
        },
    }


# The response shapes of the operational routes every process serves (shared/app.py lists them).

class Liveness(ResponseModel):
    status: Literal["ok"]


class Readiness(ResponseModel):
    status: Literal["ok", "degraded", "unavailable"]
    checks: dict[str, Literal["ok", "failing"]]
    failing: list[str] | None = None
    degraded: list[str] | None = None


TEXT = Body({"type": "string"}, media_type="text/plain")
