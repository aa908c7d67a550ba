"""The credentials module (credentials.asciidoc): the registration handshake both ways, the
token's rotation and unregistration. Symmetric: a partner calls our endpoint (POST registers with
its token B and versions URL, PUT registers again, DELETE unregisters, GET answers our
credentials), and `register_at` plays the client's part at a partner's endpoint."""
from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal
from uuid import UUID

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from services.ocpi import client, store
from services.ocpi.modules import ANSWERS, OcpiModule
from services.ocpi.transport import (
    BASE,
    CLIENT_API_UNUSABLE,
    PARTNER,
    PREFIX,
    PRESENTED_TOKEN,
    UNSUPPORTED_VERSION,
    VERSION,
    OcpiError,
    base_url,
    method_not_allowed,
    ok,
    read_body,
    validated,
)
from shared.app import POOL, SETTINGS
from shared.openapi import Operation
from shared.tokens import token_hash

Role = Literal["CPO", "EMSP", "HUB", "NAP", "NSP", "OTHER", "SCSP"]  # types.asciidoc, Role enum
CiString = Annotated[str, Field(pattern=r"^[\x20-\x7e]*$")]


class _Ocpi(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Image(_Ocpi):
    url: str
    thumbnail: str | None = None
    category: str
    type: Annotated[str, Field(max_length=4)]
    width: int | None = None
    height: int | None = None


class BusinessDetails(_Ocpi):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    website: str | None = None
    logo: Image | None = None


class CredentialsRole(_Ocpi):
    role: Role
    business_details: BusinessDetails
    party_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{3}$")]
    country_code: Annotated[str, Field(pattern=r"^[A-Za-z]{2}$")]


class Credentials(_Ocpi):
    token: Annotated[str, Field(pattern=r"^[\x21-\x7e]{1,64}$")]  # ASCII, not encoded (credentials_credentials_object)
    url: Annotated[str, Field(pattern=r"^https?://\S+$", max_length=255)]
    roles: Annotated[list[CredentialsRole], Field(min_length=1)]


class Version(_Ocpi):
    version: str
    url: str


class Endpoint(_Ocpi):
    identifier: str
    role: Literal["SENDER", "RECEIVER"]
    url: str


class VersionDetails(_Ocpi):
    version: str
    endpoints: list[Endpoint]


def new_token() -> str:
    """256 random bits, 43 characters: a credentials token (string(64), ASCII)."""
    return secrets.token_urlsafe(32)


def our_credentials(app: web.Application, base: str, token: str) -> dict[str, Any]:
    settings = app[SETTINGS]
    return {
        "token": token,
        "url": f"{base}{PREFIX}/versions",
        "roles": [{"role": "CPO", "business_details": {"name": settings.ocpi_business_name},
                   "party_id": settings.ocpi_party_id, "country_code": settings.ocpi_country_code}],
    }


async def partner_endpoints(app: web.Application, versions_url: str, token: str) -> VersionDetails:
    """The partner's 2.2.1 endpoints, read with `token`: 3001 when it does not answer as OCPI, 3002
    when it does not speak 2.2.1 (status_codes.asciidoc)."""
    versions = await _read(app, versions_url, token, list[Version], "versions")
    chosen = next((v for v in versions if v.version == VERSION), None)
    if chosen is None:
        raise OcpiError(UNSUPPORTED_VERSION, f"the partner's versions ({', '.join(v.version for v in versions) or 'none'}) "
                                             f"do not include {VERSION}")
    return await _read(app, chosen.url, token, VersionDetails, "version details")


async def _read(app: web.Application, url: str, token: str, model: Any, what: str) -> Any:
    try:
        answer = await client.call(app, "GET", url, token)
    except client.PartnerUnreachable as exc:
        raise OcpiError(CLIENT_API_UNUSABLE, f"could not read the partner's {what}: {exc}") from None
    if not answer.succeeded:
        raise OcpiError(CLIENT_API_UNUSABLE, f"the partner's {what} answered HTTP {answer.http_status}, "
                                             f"status {answer.status_code}: {answer.message}")
    try:
        return TypeAdapter(model).validate_python(answer.data)
    except ValidationError as exc:
        raise OcpiError(CLIENT_API_UNUSABLE, f"the partner's {what} are not OCPI {VERSION}: {exc.errors()[0]['msg']}") from None


def _base(request: web.Request) -> str:
    return base_url(request)


# --- our endpoint: a partner registers with us ----------------------------------------------------

async def get_credentials(request: web.Request) -> web.Response:
    """Our credentials for the caller: the token it called with (token A before it registered)."""
    return ok(our_credentials(request.app, _base(request), request[PRESENTED_TOKEN]))


async def post_credentials(request: web.Request) -> web.Response:
    given = await read_body(request, Credentials)
    partner = request[PARTNER]
    if partner.token_kind != "A":
        raise method_not_allowed("already registered: PUT the credentials to register again")
    return await _register_partner(request, partner.partner_id, given, expected_kind="A")


async def put_credentials(request: web.Request) -> web.Response:
    given = await read_body(request, Credentials)
    partner = request[PARTNER]
    if not partner.registered:
        raise method_not_allowed("not registered yet: POST the credentials to register")
    return await _register_partner(request, partner.partner_id, given, expected_kind="C")


async def _register_partner(request: web.Request, partner_id: UUID, given: Credentials, *, expected_kind: str) -> web.Response:
    """Read the partner's endpoints with its token, then give it a new token: the one it called
    with stops working in the same transaction."""
    details = await partner_endpoints(request.app, given.url, given.token)
    token_c = new_token()
    called_with = token_hash(request[PRESENTED_TOKEN])
    async with request.app[POOL].acquire() as conn, conn.transaction():
        row = await store.partners.get(conn, partner_id, lock=True)
        if row is None or row["token_hash"] != called_with or row["token_kind"] != expected_kind:
            raise OcpiError(2000, "the credentials changed while registering; call again with the current token", http_status=401)
        await store.partners.register(
            conn, partner_id, new_token=token_c, their_token=given.token, versions_url=given.url, version=details.version,
            endpoints=[e.model_dump() for e in details.endpoints], roles=[r.model_dump(exclude_none=True) for r in given.roles])
    return ok(our_credentials(request.app, _base(request), token_c))


async def delete_credentials(request: web.Request) -> web.Response:
    partner = request[PARTNER]
    if not partner.registered:
        raise method_not_allowed("not registered")
    async with request.app[POOL].acquire() as conn, conn.transaction():
        await store.partners.unregister(conn, partner.partner_id)
    return ok()


# --- a partner's endpoint: we register with it ----------------------------------------------------

class RegistrationFailed(Exception):
    """Registering at a partner did not work; the message says where it stopped."""


async def register_at(app: web.Application, partner_id: UUID, *, versions_url: str, token_a: str, base: str) -> Any:
    """The handshake the other way (credentials.asciidoc, "Registration", parties swapped): read
    the partner's endpoints with its token A, POST our credentials with a token B of ours, and keep
    the token C it answers. Token B takes the place of the partner's token A to us while the partner
    reads our versions with it; on failure the old token stands again."""
    try:
        details = await partner_endpoints(app, versions_url, token_a)
    except OcpiError as exc:
        raise RegistrationFailed(exc.message) from None
    url = next((e.url for e in details.endpoints if e.identifier == "credentials"), None)
    if url is None:
        raise RegistrationFailed("the partner lists no credentials endpoint")
    token_b = new_token()
    async with app[POOL].acquire() as conn:
        before = await store.partners.get(conn, partner_id)
        await store.partners.set_token(conn, partner_id, token_b, kind="A")
    try:
        answer = await client.call(app, "POST", url, token_a, body=our_credentials(app, base, token_b), timeout=30)
        if not answer.succeeded:
            raise RegistrationFailed(f"the partner refused our credentials: HTTP {answer.http_status}, "
                                     f"status {answer.status_code}: {answer.message}")
        try:
            theirs = validated(Credentials, answer.data)
        except OcpiError as exc:
            raise RegistrationFailed(f"the partner's credentials are not valid: {exc.message}") from None
    except (RegistrationFailed, client.PartnerUnreachable) as exc:
        async with app[POOL].acquire() as conn:
            await store.partners.restore_token_hash(conn, partner_id, before["token_hash"], before["token_kind"])
        raise RegistrationFailed(str(exc)) from None
    async with app[POOL].acquire() as conn:
        return await store.partners.register(
            conn, partner_id, new_token=token_b, their_token=theirs.token, versions_url=versions_url, version=details.version,
            endpoints=[e.model_dump() for e in details.endpoints], roles=[r.model_dump(exclude_none=True) for r in theirs.roles])


# The module is symmetric, with no Sender or Receiver interface; the version details name it with
# role SENDER, as the example of version_information_endpoint.asciidoc does.
MODULE = OcpiModule("credentials", ("SENDER",), (
    Operation("GET", f"{BASE}/credentials", get_credentials, "OCPI: our credentials for the caller", "ocpi", ANSWERS),
    Operation("POST", f"{BASE}/credentials", post_credentials, "OCPI: register (token A)", "ocpi", ANSWERS,
              body=Credentials),
    Operation("PUT", f"{BASE}/credentials", put_credentials, "OCPI: register again, new token", "ocpi", ANSWERS,
              body=Credentials),
    Operation("DELETE", f"{BASE}/credentials", delete_credentials, "OCPI: unregister", "ocpi", ANSWERS),
))
