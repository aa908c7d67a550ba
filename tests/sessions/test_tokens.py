"""Who may charge (CONTRACT section 7): the token list, the gateway's Authorize question with OCPP
1.6 idTagInfo semantics, and, for the reference gateway that never asks, each session's
`authorization` (its idTag's status at the session's start) with one RemoteStopTransaction for
a session that was not Accepted, its energy still finalized, priced and settled."""
from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.chargers.test_reference_gateway import priced_site, register, settlement_of
from tests.ingest import gateway_events as ev
from tests.sessions.flows import applied, finalized, send, session_when
from tests.support import eventually, unique_id


def stamp(seconds_from_now: float = 0) -> str:
    """A whole-second time as chargers stamp them, near now (tokens and tariffs are judged by it)."""
    moment = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=seconds_from_now)
    return moment.isoformat().replace("+00:00", "Z")


def started(cp: str, tx: int, tag: str, ts: str, connector: int = 1, meter_start: int = 0) -> dict:
    return {**ev.started(cp, tx, meter_start=meter_start, ts=ts, connector=connector), "idTag": tag}


def tag() -> str:
    return unique_id("T")[:20]


async def add_token(api, id_tag: str, **fields) -> dict:
    status, token = await api.admin("POST", "/v1/tokens", {"idTag": id_tag, **fields})
    assert status == 201, token
    return token


async def authorize(api, cp: str, id_tag: str) -> dict:
    status, body = await api.gateway("POST", "/v1/gateway/authorize", {"chargePointId": cp, "idTag": id_tag})
    assert status == 200, body
    return body["idTagInfo"]


def stop_key(session: dict) -> str:
    return f"session:{session['sessionId']}:unauthorized-stop"


async def stops_of(api, session: dict) -> list[dict]:
    status, body = await api.admin("GET", f"/v1/commands?chargePointId={session['chargePointId']}&limit=500")
    assert status == 200, body
    return [c for c in body["items"] if c["idempotencyKey"] == stop_key(session)]


# --- the token list ------------------------------------------------------------------------------

async def test_a_token_is_created_read_listed_replaced_and_removed(api):
    id_tag = tag()
    created = await add_token(api, id_tag, expiresAt="2030-01-01T00:00:00Z", note="fleet card")
    assert created == created | {"idTag": id_tag, "status": "Accepted", "expiresAt": "2030-01-01T00:00:00Z",
                                 "parentIdTag": None, "siteIds": None, "maxConcurrentSessions": 1, "note": "fleet card"}
    status, again = await api.admin("POST", "/v1/tokens", {"idTag": id_tag.lower()})
    assert status == 409, again  # idTags are case-insensitive (OCPP CiString20)
    status, read = await api.admin("GET", f"/v1/tokens/{id_tag.lower()}")
    assert (status, read) == (200, created)

    status, replaced = await api.admin("PUT", f"/v1/tokens/{id_tag}", {"status": "Blocked"})
    assert status == 200, replaced
    assert (replaced["status"], replaced["expiresAt"], replaced["note"], replaced["createdAt"]) == (
        "Blocked", None, None, created["createdAt"])  # replaced: what is left out takes its default
    status, listed = await api.admin("GET", f"/v1/tokens?status=Blocked&q={id_tag[2:10].lower()}")
    assert status == 200 and [t["idTag"] for t in listed["items"]] == [id_tag]

    status, _ = await api.admin("DELETE", f"/v1/tokens/{id_tag}")
    assert status == 204
    assert (await api.admin("GET", f"/v1/tokens/{id_tag}"))[0] == 404
    assert (await api.admin("DELETE", f"/v1/tokens/{id_tag}"))[0] == 404
    assert (await api.admin("PUT", f"/v1/tokens/{id_tag}", {}))[0] == 404


async def test_the_token_list_pages_by_id_tag(api):
    prefix = unique_id("PG")[:12]
    tags = [f"{prefix}-{i}" for i in range(5)]
    for id_tag in reversed(tags):
        await add_token(api, id_tag)
    seen, cursor = [], None
    while True:
        status, body = await api.admin("GET", f"/v1/tokens?q={prefix}&limit=2" + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200, body
        seen += [t["idTag"] for t in body["items"]]
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert seen == tags


@pytest.mark.parametrize(("body", "field"), [
    ({"idTag": "X" * 21}, "idTag"),
    ({"idTag": "OK-TAG", "status": "Suspended"}, "status"),
    ({"idTag": "OK-TAG", "expiresAt": "2030-01-01T00:00:00"}, "expiresAt"),
    ({"idTag": "OK-TAG", "maxConcurrentSessions": 0}, "maxConcurrentSessions"),
    ({"idTag": "OK-TAG", "parentIdTag": "ok-tag"}, "parentIdTag"),
    ({"idTag": "OK-TAG", "siteIds": ["not-a-uuid"]}, "siteIds"),
    ({"idTag": "OK\x01TAG"}, "idTag"),
])
async def test_a_bad_token_is_a_400_naming_the_field_and_writes_nothing(api, pg, body, field):
    body = {**body, "idTag": body["idTag"].replace("OK", unique_id("B")[:8])} if "OK" in body["idTag"] else body
    body = {**body, "parentIdTag": body["idTag"].lower()} if "parentIdTag" in body else body
    status, problem = await api.admin("POST", "/v1/tokens", body)
    assert status == 400, problem
    assert any(e["loc"][0] == field for e in problem["errors"]), problem
    assert await pg.fetchval("SELECT count(*) FROM sessions.tokens WHERE id_tag_key = lower($1)", body["idTag"]) == 0


# --- Authorize -----------------------------------------------------------------------------------

async def test_authorize_answers_with_ocpp_id_tag_info(api):
    cp = unique_id("AUTH")
    await register(api, cp)
    blocked, expired, child, parent = tag(), tag(), tag(), tag()
    await add_token(api, blocked, status="Blocked")
    await add_token(api, expired, expiresAt="2026-01-01T00:00:00Z")
    await add_token(api, parent, status="Blocked")
    await add_token(api, child, parentIdTag=parent, expiresAt="2031-05-01T00:00:00Z")

    assert await authorize(api, cp, tag()) == {"status": "Accepted"}  # open: an unlisted tag charges
    assert await authorize(api, cp, blocked) == {"status": "Blocked"}
    assert await authorize(api, cp, expired.lower()) == {"status": "Expired", "expiryDate": "2026-01-01T00:00:00Z"}
    assert await authorize(api, cp, child) == {"status": "Blocked", "parentIdTag": parent, "expiryDate": "2031-05-01T00:00:00Z"}
    assert await authorize(api, cp, "X" * 25) == {"status": "Invalid"}  # a tag OCPP cannot hold: answered, not refused
    status, _ = await api.admin("POST", "/v1/gateway/authorize", {"chargePointId": cp, "idTag": blocked})
    assert status == 401  # the gateway's key, not the operators'


async def test_authorize_obeys_the_sites_of_a_token(api):
    _, site = await api.admin("POST", "/v1/sites", {"name": "Depot"})
    _, elsewhere = await api.admin("POST", "/v1/sites", {"name": "Elsewhere"})
    here, there = unique_id("HERE"), unique_id("THERE")
    await register(api, here, site["siteId"])
    await register(api, there, elsewhere["siteId"])
    depot_only = tag()
    await add_token(api, depot_only, siteIds=[site["siteId"]])
    assert (await authorize(api, here, depot_only))["status"] == "Accepted"
    assert (await authorize(api, there, depot_only))["status"] == "Invalid"


async def test_a_token_for_a_site_that_does_not_exist_is_a_400(api, pg):
    _, site = await api.admin("POST", "/v1/sites", {"name": "Real"})
    id_tag, unknown = tag(), str(uuid.uuid4())
    status, problem = await api.admin("POST", "/v1/tokens", {"idTag": id_tag, "siteIds": [site["siteId"], unknown]})
    assert status == 400 and [e["loc"] for e in problem["errors"]] == [["siteIds", 1]], problem
    assert (await api.admin("GET", f"/v1/tokens/{id_tag}"))[0] == 404


async def test_authorize_says_concurrent_tx_while_the_tokens_sessions_are_going(api, pg):
    cp, other = unique_id("CTX"), unique_id("CTX")
    id_tag = tag()
    await add_token(api, id_tag, maxConcurrentSessions=1)
    assert (await authorize(api, other, id_tag))["status"] == "Accepted"
    await applied(pg, await send(api, started(cp, 1, id_tag, stamp())))
    assert (await authorize(api, other, id_tag))["status"] == "ConcurrentTx"
    await applied(pg, await send(api, ev.ended(cp, 1, meter_stop=500, ts=stamp(1))))
    assert (await authorize(api, other, id_tag))["status"] == "Accepted"


async def test_in_list_mode_an_unlisted_tag_is_invalid(make_api):
    api = await make_api(authorization="list")
    cp = unique_id("LIST")
    listed = tag()
    await add_token(api, listed)
    assert await authorize(api, cp, tag()) == {"status": "Invalid"}
    assert await authorize(api, cp, listed) == {"status": "Accepted"}


# --- the sessions of a gateway that never asks ---------------------------------------------------

async def test_a_blocked_tokens_session_gets_exactly_one_remote_stop_and_is_still_billed(api, pg, fake_gateway):
    site, tariff = await priced_site(api, "0.40")
    cp = unique_id("BLOCK")
    await register(api, cp, site["siteId"])
    blocked = tag()
    await add_token(api, blocked, status="Blocked")
    start = started(cp, 7, blocked, stamp(1), meter_start=1000)
    await asyncio.sleep(1.2)  # the start's second is over: the tariff and the block are in force for it
    # The reference gateway answers Accepted to the charger and reports the start; it arrives twice.
    await applied(pg, await send(api, start, start))
    session = await session_when(api, cp, 7, lambda s: s["authorization"] is not None)
    assert session["authorization"] == "Blocked"
    [stop] = await eventually(lambda: _final_stops(api, session))
    assert (stop["type"], stop["payload"], stop["status"]) == ("RemoteStopTransaction", {"transactionId": 7}, "Acked")

    # The charger stops; its end, and the start once more, ask for no second stop.
    await applied(pg, await send(api, ev.ended(cp, 7, meter_stop=3500, ts=stamp(2)), start))
    done = await session_when(api, cp, 7, lambda s: s["costAmount"] is not None)
    assert (done["energyWh"], done["costAmount"], done["tariffId"], done["authorization"]) == (2500, "1.00", tariff["tariffId"], "Blocked")
    assert (await eventually(lambda: settlement_of(api, session["sessionId"])))["amount"] == "1.00"
    assert len(await stops_of(api, session)) == 1
    assert len(fake_gateway.calls_for(stop_key(session))) == 1


async def _final_stops(api, session: dict) -> list[dict] | None:
    stops = await stops_of(api, session)
    return stops if stops and all(s["status"] in ("Acked", "Failed") for s in stops) else None


async def test_a_parents_block_stops_its_childs_session(api, pg):
    cp = unique_id("PARENT")
    parent, child = tag(), tag()
    await add_token(api, parent, status="Blocked")
    await add_token(api, child, parentIdTag=parent)
    await applied(pg, await send(api, started(cp, 1, child, stamp(1))))
    session = await session_when(api, cp, 1, lambda s: s["authorization"] is not None)
    assert session["authorization"] == "Blocked"
    assert len(await eventually(lambda: stops_of(api, session))) == 1


@pytest.mark.parametrize("order", ["as sent", "reversed"])
async def test_a_tokens_second_session_at_once_is_concurrent_tx_whatever_the_order(api, pg, order):
    first_cp, second_cp = unique_id("CONC"), unique_id("CONC")
    id_tag = tag()
    await add_token(api, id_tag, maxConcurrentSessions=1)
    events = [started(first_cp, 1, id_tag, stamp(1)), started(second_cp, 1, id_tag, stamp(30))]
    if order == "reversed":
        events.reverse()
    await applied(pg, await send(api, *events))
    first = await session_when(api, first_cp, 1, lambda s: s["authorization"] == "Accepted")
    second = await session_when(api, second_cp, 1, lambda s: s["authorization"] == "ConcurrentTx")
    assert len(await eventually(lambda: stops_of(api, second))) == 1
    assert await stops_of(api, first) == []


async def test_a_token_changed_after_the_start_does_not_change_the_sessions_authorization(api, pg):
    cp = unique_id("LATER")
    id_tag = tag()
    await add_token(api, id_tag)
    await asyncio.sleep(1)
    start = started(cp, 1, id_tag, stamp())
    await asyncio.sleep(1)
    # Blocked after the start, by the charger's clock; the start is delivered only afterwards.
    await api.admin("PUT", f"/v1/tokens/{id_tag}", {"status": "Blocked"})
    await applied(pg, await send(api, start, ev.sample(cp, 1, "900", stamp(2)), ev.ended(cp, 1, meter_stop=1200, ts=stamp(3))))
    session = await session_when(api, cp, 1, finalized)
    assert (session["authorization"], session["energyWh"]) == ("Accepted", 1200)
    assert await stops_of(api, session) == []


async def test_flag_records_the_authorization_and_stops_nothing(make_api, connect_db):
    api = await make_api(unauthorized_sessions="flag")
    pg = await connect_db(api)
    cp = unique_id("FLAG")
    blocked = tag()
    await add_token(api, blocked, status="Blocked")
    await applied(pg, await send(api, started(cp, 1, blocked, stamp(1))))
    session = await session_when(api, cp, 1, lambda s: s["authorization"] is not None)
    assert session["authorization"] == "Blocked"
    await asyncio.sleep(1)
    assert await stops_of(api, session) == []
