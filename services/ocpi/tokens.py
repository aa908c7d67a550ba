"""OCPI 2.2.1 Tokens module, RECEIVER (mod_tokens.asciidoc): partners' tokens as the CPO keeps
them, and real-time authorization asked of their owners.

- Objects ("Token Object"): kept as the eMSP sent them, one per (country_code, party_id, uid, type);
  each change is announced to the sessions service (`token.partner-changed`), which authorizes
  the token's uid as an idTag by its `valid` and `whitelist` (services/sessions/roaming.py).
- Receiver interface: `GET`, `PUT` and `PATCH {tokens}/{country_code}/{party_id}/{token_uid}[?type=]`
  ("Client Owned Object": a partner writes the tokens of its own parties only). A PATCH must carry
  `last_updated`; a PUT older than the token stored changes nothing.
- Real-time authorization ("Real-time authorization", "POST Method" of the Sender interface): the
  sessions service asks over RabbitMQ (shared/realtime_authorization.py); a known token is asked
  of its owner, an unknown uid of every partner with a Tokens SENDER endpoint; the answer's Token
  is kept too. Which partners answer is announced to sessions (`token.realtime-authorizers`)."""
from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import asyncpg
from aiohttp import web
from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

from services.ocpi import client, store
from services.ocpi.modules import ANSWERS, OcpiModule
from services.ocpi.transport import BASE, PARTNER, SENDER_PARTY, invalid, ok, read_body, unknown_token, validated
from shared.app import BROKER, CONSUMERS, POOL, unit_of_work
from shared.domain import Party, PartnerTokenChanged, PartnerTokenRef, RealtimeAuthorizers
from shared.openapi import Operation
from shared.outbox import enqueue_domain
from shared.periodic import every
from shared.realtime_authorization import AuthorizationAnswer, AuthorizationAsked, AuthorizationDesk

log = logging.getLogger(__name__)
SCHEMA = "ocpi"

# --- objects (mod_tokens.asciidoc "Object description", types.asciidoc) --------------------------------


def _utc(value: datetime) -> datetime:
    """types.asciidoc, DateTime: "All timestamps SHALL be in UTC. The absence of the timezone
    designator implies a UTC timestamp."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def ci_string(length: int, *, min_length: int = 1):
    """CiString(n): case-insensitive printable ASCII, at most n characters."""
    return Annotated[str, StringConstraints(min_length=min_length, max_length=length, pattern=r"^[\x20-\x7e]*$")]


DateTime = Annotated[datetime, AfterValidator(_utc)]
TokenType = Literal["AD_HOC_USER", "APP_USER", "OTHER", "RFID"]
WhitelistType = Literal["ALWAYS", "ALLOWED", "ALLOWED_OFFLINE", "NEVER"]
ProfileType = Literal["CHEAP", "FAST", "GREEN", "REGULAR"]


class EnergyContract(BaseModel):
    model_config = ConfigDict(extra="ignore")
    supplier_name: Annotated[str, StringConstraints(max_length=64)]
    contract_id: Annotated[str, StringConstraints(max_length=64)] | None = None


class OcpiToken(BaseModel):
    model_config = ConfigDict(extra="ignore")
    country_code: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$")]
    party_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{3}$")]
    uid: ci_string(36)
    type: TokenType
    contract_id: ci_string(36)
    visual_number: Annotated[str, StringConstraints(max_length=64)] | None = None
    issuer: Annotated[str, StringConstraints(max_length=64)]
    group_id: ci_string(36) | None = None
    valid: bool
    whitelist: WhitelistType
    language: Annotated[str, StringConstraints(min_length=2, max_length=2)] | None = None
    default_profile_type: ProfileType | None = None
    energy_contract: EnergyContract | None = None
    last_updated: DateTime

    def stored(self) -> dict[str, Any]:
        """The object as the CPO keeps it and answers it (OCPI field names, DateTime in UTC)."""
        body = self.model_dump(mode="json", exclude_none=True)
        body["last_updated"] = self.last_updated.strftime("%Y-%m-%dT%H:%M:%SZ")
        return body

    def ref(self) -> PartnerTokenRef:
        return PartnerTokenRef(countryCode=self.country_code.upper(), partyId=self.party_id.upper(), uid=self.uid,
                               type=self.type, contractId=self.contract_id)

    def changed(self) -> PartnerTokenChanged:
        return PartnerTokenChanged(countryCode=self.country_code.upper(), partyId=self.party_id.upper(), uid=self.uid,
                                   type=self.type, contractId=self.contract_id, valid=self.valid, whitelist=self.whitelist,
                                   groupId=self.group_id, lastUpdated=self.last_updated)


class OcpiTokenPatch(BaseModel):
    """A PATCH names the fields that change, `last_updated` always ("Any request to the PATCH
    method SHALL contain the last_updated field")."""
    model_config = ConfigDict(extra="allow")
    last_updated: DateTime


class TypeQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: TokenType = "RFID"  # "Default if omitted: RFID"


_COUNTRY, _PARTY = re.compile(r"^[A-Za-z]{2}$"), re.compile(r"^[A-Za-z0-9]{3}$")
_UID = re.compile(r"^[\x20-\x7e]{1,36}$")

# --- the Receiver interface ------------------------------------------------------------------------


def _addressed(request: web.Request) -> tuple[str, str, str, str]:
    """(country_code, party_id, uid, type) of the URL, checked; a partner writes its own parties'
    tokens only ("Client Owned Object": the URL names the party that owns the object)."""
    country_code, party_id, uid = (request.match_info[k] for k in ("country_code", "party_id", "token_uid"))
    if not _COUNTRY.match(country_code) or not _PARTY.match(party_id):
        raise invalid("country_code must be 2 letters and party_id 3 letters or digits")
    if not _UID.match(uid):
        raise invalid("token_uid must be 1 to 36 printable ASCII characters (CiString(36))")
    query = dict(request.query)
    if set(query) - {"type"}:
        raise invalid(f"unknown query parameter(s): {sorted(set(query) - {'type'})}")
    type_ = validated(TypeQuery, query).type
    party = (country_code.upper(), party_id.upper())
    if party not in _parties_of(request):
        raise invalid(f"party {party[0]}/{party[1]} is not one of this partner's parties")
    return party[0], party[1], uid, type_


def _parties_of(request: web.Request) -> set[tuple[str, str]]:
    partner = request[PARTNER]
    parties = {(r["country_code"].upper(), r["party_id"].upper()) for r in partner.roles}
    if request.get(SENDER_PARTY):
        parties.add(tuple(request[SENDER_PARTY]))
    return parties


async def get_token(request: web.Request) -> web.Response:
    country_code, party_id, uid, type_ = _addressed(request)
    async with request.app[POOL].acquire() as conn:
        row = await store.tokens.get(conn, country_code, party_id, uid, type_)
    if row is None:
        raise unknown_token(f"{country_code}/{party_id}/{uid} ({type_})")
    return ok(row["token"])


async def put_token(request: web.Request) -> web.Response:
    """New or updated Token ("PUT Method"): the URL's country_code, party_id and uid "SHALL be the
    same value" as the object's, and its type when given."""
    country_code, party_id, uid, type_ = _addressed(request)
    token = await read_body(request, OcpiToken)
    if (token.country_code.upper(), token.party_id.upper(), token.uid.lower()) != (country_code, party_id, uid.lower()):
        raise invalid("the Token's country_code, party_id and uid must be those of the URL")
    if "type" in request.query and token.type != type_:
        raise invalid(f"the Token's type {token.type} is not the URL's {type_}")
    async with unit_of_work(request.app, SCHEMA) as conn:
        await keep(conn, request[PARTNER].partner_id, token)
    return ok()


async def patch_token(request: web.Request) -> web.Response:
    """Partial update ("PATCH Method"): the stored Token with the fields sent; an unknown token is
    2004."""
    country_code, party_id, uid, type_ = _addressed(request)
    patch = await read_body(request, OcpiTokenPatch)
    sent = patch.model_dump(mode="json")
    for field, expected in (("country_code", country_code), ("party_id", party_id), ("uid", uid), ("type", type_)):
        if field in sent and str(sent[field]).upper() != expected.upper():
            raise invalid(f"{field} cannot be changed by a PATCH (the URL names the token)")
    async with unit_of_work(request.app, SCHEMA) as conn:
        row = await store.tokens.get(conn, country_code, party_id, uid, type_, lock=True)
        if row is None:
            raise unknown_token(f"{country_code}/{party_id}/{uid} ({type_})")
        token = validated(OcpiToken, {**row["token"], **sent})
        await keep(conn, request[PARTNER].partner_id, token)
    return ok()


async def keep(conn: asyncpg.Connection, partner_id, token: OcpiToken) -> None:
    """Store a partner's Token and announce it, in the caller's transaction (an older one than
    stored changes nothing)."""
    if await store.tokens.store(conn, partner_id, token.stored(), token.last_updated):
        await enqueue_domain(conn, SCHEMA, token.changed())


_PATH = f"{BASE}/tokens/{{country_code}}/{{party_id}}/{{token_uid}}"
MODULE = OcpiModule("tokens", ("RECEIVER",), (
    Operation("GET", _PATH, get_token, "OCPI Tokens: a partner's token as stored (?type=, default RFID)", "ocpi",
              ANSWERS),
    Operation("PUT", _PATH, put_token, "OCPI Tokens: a partner pushes a new or updated token", "ocpi",
              ANSWERS, body=OcpiToken),
    Operation("PATCH", _PATH, patch_token, "OCPI Tokens: a partner updates some fields of a token (last_updated required)",
              "ocpi", ANSWERS, body=OcpiTokenPatch),
))

# --- real-time authorization ("Real-time authorization"; Sender interface "POST Method") --------------

# AuthorizationInfo.allowed (mod_tokens.asciidoc, "Allowed enum") as OCPP 1.6's idTagInfo status:
# OCPP 1.6 has no NoCredit (a token that may not charge: Blocked) and no "not here" (Invalid).
_ALLOWED = {"ALLOWED": "Accepted", "BLOCKED": "Blocked", "EXPIRED": "Expired", "NO_CREDIT": "Blocked",
            "NOT_ALLOWED": "Invalid"}


async def authorize(app: web.Application, asked: AuthorizationAsked) -> AuthorizationAnswer:
    """Ask the token's owner (a known token) or every partner that answers real-time authorization
    (an unknown uid). The first answer that knows the token decides. A known token its owner does
    not know, or whose owner does not answer, is Invalid. An unknown uid that no partner claims is
    Unknown when at least one partner answered; when none did, it is Invalid (no answer)."""
    async with app[POOL].acquire() as conn:
        partners = await store.tokens.realtime_partners(conn)
        if asked.known is not None:
            row = await store.tokens.get(conn, asked.known.countryCode, asked.known.partyId, asked.known.uid, asked.known.type)
            owner = row["partner_id"] if row is not None else None
            partners = [p for p in partners if p["partner_id"] == owner]
    if not partners:
        return AuthorizationAnswer(status="Invalid" if asked.known is not None else "Unknown")
    type_ = asked.known.type if asked.known is not None else None
    asking = [asyncio.create_task(_ask_partner(app, p, asked.uid, type_)) for p in partners]
    someone_answered = False
    try:
        for next_answer in asyncio.as_completed(asking):
            answer = await next_answer
            if answer == "unknown":
                someone_answered = True
            elif answer is not None:
                return answer
    finally:
        for task in asking:
            task.cancel()
    if asked.known is not None or not someone_answered:
        return AuthorizationAnswer(status="Invalid", partnerToken=asked.known)
    return AuthorizationAnswer(status="Unknown")


async def _ask_partner(app: web.Application, partner: asyncpg.Record, uid: str,
                       type_: str | None) -> AuthorizationAnswer | Literal["unknown"] | None:
    """One partner's answer: an AuthorizationAnswer, "unknown" (404 / 2004), or None (no usable answer)."""
    endpoint = next(e["url"] for e in partner["endpoints"] if e["identifier"] == "tokens" and e["role"] == "SENDER")
    url = f"{endpoint.rstrip('/')}/{uid}/authorize" + (f"?type={type_}" if type_ else "")
    try:
        answer = await client.call(app, "POST", url, partner["their_token"], to=client.party_of(partner["roles"]))
    except client.PartnerUnreachable as exc:
        log.warning("real-time authorization: the partner did not answer", extra={"error": str(exc)})
        return None
    if answer.http_status == 404 or answer.status_code == 2004:
        return "unknown"
    data = answer.data if answer.succeeded and isinstance(answer.data, dict) else None
    if data is None or data.get("allowed") not in _ALLOWED:
        log.warning("real-time authorization: the partner's answer is not an AuthorizationInfo",
                    extra={"http_status": answer.http_status, "status_code": answer.status_code})
        return None
    token = None
    try:
        token = OcpiToken.model_validate(data.get("token"))
    except ValueError:
        log.info("real-time authorization: the answer's token is not a Token; its verdict stands")
    if token is not None:
        async with unit_of_work(app, SCHEMA) as conn:
            await keep(conn, partner["partner_id"], token)
    reference = data.get("authorization_reference")
    return AuthorizationAnswer(status=_ALLOWED[data["allowed"]], partnerToken=token.ref() if token else None,
                               authorizationReference=reference if isinstance(reference, str) else None)


async def announce_authorizers(app: web.Application) -> None:
    """Tell the sessions service which partners answer real-time authorization, when that changed."""
    async with unit_of_work(app, SCHEMA) as conn:
        partners = await store.tokens.realtime_partners(conn)
        parties = sorted({(r["country_code"].upper(), r["party_id"].upper()) for p in partners for r in p["roles"]})
        listed = [{"countryCode": cc, "partyId": pid} for cc, pid in parties]
        if await store.tokens.announced_authorizers(conn) == listed:
            return
        at = datetime.now(UTC)
        await store.tokens.record_authorizers(conn, listed, at)
        await enqueue_domain(conn, SCHEMA, RealtimeAuthorizers(parties=[Party(**p) for p in listed], at=at))


ANNOUNCE_SECONDS = 2.0


async def authorization_desk_ctx(app: web.Application) -> AsyncIterator[None]:
    """This process answers real-time authorization questions while it runs."""
    desk = AuthorizationDesk(app[BROKER], lambda asked: authorize(app, asked))
    await desk.start()
    app[CONSUMERS].append(desk)  # /readyz reports it with the consumers
    yield
    await desk.stop()


authorizers_announcer = every("ocpi:realtime-authorizers", lambda app: ANNOUNCE_SECONDS, announce_authorizers)
