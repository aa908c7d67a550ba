"""Tokens module, RECEIVER: an eMSP pushes its tokens (PUT, PATCH) and reads one back (GET); a
charger's idTag that is such a token's uid charges by the token's `valid` and `whitelist`, a
NEVER token is asked of the eMSP in real time (Invalid when it does not answer within 5 s), and
the session keeps whose token it was."""
from __future__ import annotations

import time
import uuid

from tests.chargers.test_reference_gateway import register
from tests.ingest import gateway_events as ev
from tests.ocpi.conftest import Cpo
from tests.ocpi.emsp import Emsp
from tests.sessions.flows import session_when
from tests.support import eventually, unique_id

COUNTRY, PARTY = "DE", "EMS"


def a_uid() -> str:
    return f"U{uuid.uuid4().hex[:12].upper()}"


def token(uid: str, **fields) -> dict:
    return {"country_code": COUNTRY, "party_id": PARTY, "uid": uid, "type": "RFID", "contract_id": f"DE-EMS-C{uid[-8:]}",
            "issuer": "Test eMSP", "valid": True, "whitelist": "ALWAYS", "last_updated": "2026-11-25T09:00:00Z"} | fields


def url(cpo: Cpo, uid: str, party: str = PARTY, query: str = "") -> str:
    return f"{cpo.url}/ocpi/2.2.1/tokens/{COUNTRY}/{party}/{uid}{query}"


async def put(cpo: Cpo, emsp: Emsp, body: dict) -> None:
    status, answer, _ = await emsp.call("PUT", url(cpo, body["uid"]), json=body)
    assert status == 200 and answer["status_code"] == 1000, answer


async def authorize(cpo: Cpo, cp: str, id_tag: str) -> dict:
    status, body = await cpo.api.gateway("POST", "/v1/gateway/authorize", {"chargePointId": cp, "idTag": id_tag})
    assert status == 200, body
    return body["idTagInfo"]


async def authorized_as(cpo: Cpo, cp: str, id_tag: str, expected: str) -> None:
    """The sessions service has taken the token's copy once the gateway's question gets `expected`."""
    async def probe():
        return (await authorize(cpo, cp, id_tag))["status"] == expected
    await eventually(probe)


async def test_a_partners_token_is_put_read_back_and_charges_with_its_party(cpo: Cpo, emsp: Emsp) -> None:
    await cpo.registered_emsp(emsp)
    uid, blocked_uid = a_uid(), a_uid()
    await put(cpo, emsp, token(uid))
    await put(cpo, emsp, token(blocked_uid, valid=False))

    status, answer, _ = await emsp.call("GET", url(cpo, uid.lower()))
    assert status == 200 and answer["status_code"] == 1000
    assert answer["data"] == token(uid)

    cp = unique_id("ROAM")
    await register(cpo.api, cp)
    await authorized_as(cpo, cp, blocked_uid, "Blocked")  # the partner's invalidated token is refused
    assert await authorize(cpo, cp, uid) == {"status": "Accepted"}

    await cpo.api.send_events(ev.booted(cp), {**ev.started(cp, 7), "idTag": uid}, {**ev.ended(cp, 7, 5000), "idTag": uid})
    session = await session_when(cpo.api, cp, 7, lambda s: s["authorization"] is not None and s["status"] == "Finalized")
    assert session["authorization"] == "Accepted"
    assert session["partnerToken"] == {"countryCode": COUNTRY, "partyId": PARTY, "uid": uid, "type": "RFID",
                                       "contractId": token(uid)["contract_id"]}
    assert uid not in emsp.authorize_calls()  # ALWAYS: never asked in real time


async def test_patch_invalidates_a_token_and_an_unknown_one_is_2004(cpo: Cpo, emsp: Emsp) -> None:
    await cpo.registered_emsp(emsp)
    uid = a_uid()
    await put(cpo, emsp, token(uid))
    cp = unique_id("ROAM")
    await register(cpo.api, cp)
    await authorized_as(cpo, cp, uid, "Accepted")

    status, answer, _ = await emsp.call("PATCH", url(cpo, uid), json={"valid": False, "last_updated": "2026-11-25T10:00:00Z"})

    assert status == 200 and answer["status_code"] == 1000, answer
    _, answer, _ = await emsp.call("GET", url(cpo, uid))
    assert answer["data"]["valid"] is False and answer["data"]["last_updated"] == "2026-11-25T10:00:00Z"
    await authorized_as(cpo, cp, uid, "Blocked")
    for method, body in (("GET", None), ("PATCH", {"valid": False, "last_updated": "2026-11-25T10:00:00Z"})):
        status, answer, _ = await emsp.call(method, url(cpo, a_uid()), json=body)
        assert (status, answer["status_code"]) == (404, 2004), answer
    status, answer, _ = await emsp.call("GET", url(cpo, uid, query="?type=APP_USER"))
    assert (status, answer["status_code"]) == (404, 2004)  # the same uid as another type is another token


async def test_an_older_put_changes_nothing(cpo: Cpo, emsp: Emsp) -> None:
    await cpo.registered_emsp(emsp)
    uid = a_uid()
    await put(cpo, emsp, token(uid, last_updated="2026-11-25T12:00:00Z"))
    await put(cpo, emsp, token(uid, valid=False, last_updated="2026-11-25T11:00:00Z"))
    _, answer, _ = await emsp.call("GET", url(cpo, uid))
    assert answer["data"]["valid"] is True


async def test_whitelist_never_is_asked_of_the_emsp_in_real_time(cpo: Cpo, emsp: Emsp) -> None:
    await cpo.registered_emsp(emsp)
    allowed, blocked = a_uid(), a_uid()
    await put(cpo, emsp, token(allowed, whitelist="NEVER"))
    await put(cpo, emsp, token(blocked, whitelist="NEVER"))
    emsp.authorizations.update({allowed: "ALLOWED", blocked: "BLOCKED"})
    cp = unique_id("ROAM")
    await register(cpo.api, cp)

    await authorized_as(cpo, cp, blocked, "Blocked")
    assert await authorize(cpo, cp, allowed) == {"status": "Accepted"}
    assert allowed in emsp.authorize_calls() and blocked in emsp.authorize_calls()

    # A session started without asking (the reference gateway): judged by the eMSP's answer too.
    await cpo.api.send_events(ev.booted(cp), {**ev.started(cp, 3), "idTag": blocked})
    session = await session_when(cpo.api, cp, 3, lambda s: s["authorization"] is not None)
    assert session["authorization"] == "Blocked" and session["partnerToken"]["uid"] == blocked


async def test_an_emsp_that_does_not_answer_is_invalid_within_the_bound(cpo: Cpo, emsp: Emsp) -> None:
    await cpo.registered_emsp(emsp)
    uid = a_uid()
    await put(cpo, emsp, token(uid, whitelist="NEVER"))
    emsp.authorizations[uid] = "ALLOWED"
    cp = unique_id("ROAM")
    await register(cpo.api, cp)
    await authorized_as(cpo, cp, uid, "Accepted")  # the copy is there, the eMSP answers
    emsp.silent = True

    started = time.monotonic()
    info = await authorize(cpo, cp, uid)
    waited = time.monotonic() - started

    assert info == {"status": "Invalid"}
    assert waited < 8  # the eMSP holds its answer 8 s: the CPMS did not wait for it


async def test_an_unknown_uid_is_asked_of_the_partners_that_authorize_in_real_time(cpo: Cpo, emsp: Emsp) -> None:
    await cpo.registered_emsp(emsp)
    uid, stranger = a_uid(), a_uid()
    emsp.authorizations[uid] = "ALLOWED"
    emsp.tokens[uid] = token(uid, whitelist="NEVER")
    cp = unique_id("ROAM")
    await register(cpo.api, cp)

    await eventually(lambda: _asked(cpo, cp, uid, emsp))
    assert await authorize(cpo, cp, stranger) == {"status": "Accepted"}  # nobody knows it: CPMS_AUTHORIZATION=open
    # the eMSP's answer carried its Token: kept, and shown to the eMSP as stored
    _, answer, _ = await emsp.call("GET", url(cpo, uid))
    assert answer["data"]["whitelist"] == "NEVER"


async def _asked(cpo: Cpo, cp: str, uid: str, emsp: Emsp) -> bool:
    """Once the sessions service knows the eMSP answers in real time, the unknown uid is asked."""
    await authorize(cpo, cp, uid)
    return uid in emsp.authorize_calls()


async def test_bad_requests_are_2001_unknown_tokens_2004_and_wrong_tokens_401(cpo: Cpo, emsp: Emsp) -> None:
    await cpo.registered_emsp(emsp)
    uid = a_uid()
    await put(cpo, emsp, token(uid))
    cases = [
        ("PUT", url(cpo, uid), {**token(uid), "whitelist": "SOMETIMES"}),
        ("PUT", url(cpo, uid), {k: v for k, v in token(uid).items() if k != "contract_id"}),
        ("PUT", url(cpo, uid), token(a_uid())),  # the body names another uid than the URL
        ("PUT", url(cpo, uid, query="?type=APP_USER"), token(uid)),
        ("PUT", url(cpo, uid, party="XYZ"), token(uid, party_id="XYZ")),  # not this partner's party
        ("PUT", url(cpo, "U" * 37), token("U" * 37)),
        ("PUT", url(cpo, uid), [token(uid)]),
        ("PUT", url(cpo, uid), {**token(uid), "last_updated": "yesterday"}),
        ("PATCH", url(cpo, uid), {"valid": False}),  # no last_updated
        ("PATCH", url(cpo, uid), {"valid": "perhaps", "last_updated": "2026-11-25T10:00:00Z"}),
        ("PATCH", url(cpo, uid), {"uid": a_uid(), "last_updated": "2026-11-25T10:00:00Z"}),
        ("GET", url(cpo, uid, query="?type=CARD"), None),
        ("GET", f"{cpo.url}/ocpi/2.2.1/tokens/DEU/{PARTY}/{uid}", None),
    ]
    for method, target, body in cases:
        status, answer, _ = await emsp.call(method, target, json=body)
        assert (status, answer["status_code"]) == (400, 2001), (method, target, body, answer)
    status, answer, _ = await emsp.call("PUT", url(cpo, uid), json=token(uid), token="not-a-token")
    assert status == 401 and answer["status_code"] == 2000
    _, answer, _ = await emsp.call("GET", url(cpo, uid))
    assert answer["data"] == token(uid)  # nothing of the above changed it
