"""No body gets a 5xx: every nesting depth, every size up to the body limit, numbers past every
range, duplicate keys, lone surrogates, and random JSON of any shape (hypothesis), sent with valid
keys to every operation of the served document, get a 2xx or a 4xx problem. A body nested deeper
than the API takes is a 400 that says so, on every route that reads a body; and what was accepted
is applied: the queues drain and nothing is dead-lettered."""
from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import hypothesis
import pytest
from hypothesis import HealthCheck, Phase, given

from shared.app import SETTINGS
from shared.events import EVENT_TYPES
from shared.http import MAX_NESTING
from shared.jsonutil import format_ts
from tests.ingest import gateway_events as ev
from tests.ops.any_json import array, bodies, nested, object_, schema_words
from tests.ops.apidoc import served_document
from tests.ops.queues import drained, troubled
from tests.ocpi.emsp import COUNTRY_CODE as EMSP_COUNTRY, PARTY_ID as EMSP_PARTY, Emsp
from tests.support import ADMIN_TOKEN, GATEWAY_KEY, Api, eventually, free_port, unique_id

MIB = 1024 * 1024
EXAMPLES_WITH_BODY = 40  # per operation that reads a body
EXAMPLES_WITHOUT_BODY = 3


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    path: str  # with the world's ids filled in
    key: str | None  # the Authorization header
    reads_body: bool
    document: dict[str, Any]  # its operation in the served document

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


@pytest.fixture
async def emsp() -> AsyncIterator[Emsp]:
    partner = Emsp()
    await partner.start()
    yield partner
    await partner.close()


async def world_api(make_api) -> Api:
    """A CPMS whose OCPI base is its own address, so a partner can register with it."""
    port = free_port()
    return await make_api(port=port, ocpi_public_url=f"http://127.0.0.1:{port}")


async def a_world(api: Api, emsp: Emsp) -> dict[str, str]:
    """One of every resource a path names (a charger with a priced, settled session, a command, a
    token, an operator, a registered roaming partner), so requests get past the 404 (and OCPI's
    401) to the body."""
    cp = unique_id("ANY")
    status, site = await api.admin("POST", "/v1/sites", {"name": "Depot"})
    assert status == 201, site
    status, tariff = await api.admin("POST", f"/v1/sites/{site['siteId']}/tariffs", {"pricePerKwh": "0.30"})
    assert status == 201, tariff
    status, charger = await api.admin("POST", "/v1/chargers", {"chargePointId": cp, "secret": "long-enough-secret", "siteId": site["siteId"]})
    assert status == 201, charger
    now = format_ts(datetime.now(UTC).replace(microsecond=0))
    await api.send_events(ev.started(cp, 7, ts=now), ev.ended(cp, 7, meter_stop=5000, ts=now))

    async def settled() -> dict | None:
        status, page = await api.admin("GET", f"/v1/settlements?chargePointId={cp}")
        assert status == 200, page
        return page["items"][0] if page["items"] else None

    settlement = await eventually(settled, timeout=30)
    status, command = await api.admin("POST", "/v1/commands", {"type": "Reset", "chargePointId": cp, "idempotencyKey": unique_id("key"),
                                                                "payload": {"type": "Soft"}})
    assert status == 202, command
    status, token = await api.admin("POST", "/v1/tokens", {"idTag": "ANY-TAG-1"})
    assert status == 201, token
    status, operator = await api.admin("POST", "/v1/operators", {"name": "any-body", "role": "viewer"})
    assert status == 201, operator
    status, partner = await api.admin("POST", "/v1/ocpi/partners", {"name": "any-body"})
    assert status == 201, partner
    status, registered = await emsp.register_with(partner["versionsUrl"], partner["tokenA"])
    assert status == 200 and registered["status_code"] == 1000, registered
    return {"chargePointId": cp, "siteId": site["siteId"], "tariffId": tariff["tariffId"], "sessionId": settlement["sessionId"],
            "settlementId": settlement["settlementId"], "commandId": command["commandId"], "idTag": "ANY-TAG-1", "name": "any-body",
            "connectorId": "1", "partnerId": partner["partnerId"], "ocpiToken": emsp.cpo_token, "location_id": site["siteId"], "evse_uid": f"{cp}*1",
            "connector_id": "1", "country_code": EMSP_COUNTRY, "party_id": EMSP_PARTY, "token_uid": "ANY-UID-1", "command": "START_SESSION"}


def routes_of(document: dict[str, Any], world: dict[str, str]) -> list[Route]:
    """Every operation of the document, with the world's ids in its path; the ones that delete last."""
    routes = []
    for template, item in document["paths"].items():
        for method, operation in item.items():
            path = template
            for parameter in operation.get("parameters", ()):
                if parameter["in"] == "path":
                    enum = parameter["schema"].get("enum")
                    value = enum[0] if enum else world[parameter["name"]]  # a KeyError: give the world one of those
                    path = path.replace("{" + parameter["name"] + "}", value)
            security = operation.get("security") or [{}]
            key = f"Bearer {GATEWAY_KEY}" if "gatewayKey" in security[0] else f"Bearer {ADMIN_TOKEN}" \
                if "operatorToken" in security[0] else f"Token {world['ocpiToken']}" if "ocpiToken" in security[0] else None
            routes.append(Route(method.upper(), template, path, key, "requestBody" in operation, operation))
    return sorted(routes, key=lambda route: route.method == "DELETE")


async def send(api: Api, route: Route, body: bytes) -> tuple[int, str, bytes]:
    headers = {"Content-Type": "application/json"}
    if route.key:
        headers["Authorization"] = route.key
    response = await api.client.request(route.method, route.path, data=body, headers=headers)
    return response.status, response.content_type, await response.read()


def wrong_answer(route: Route, status: int, content_type: str, payload: bytes) -> str | None:
    """Why an answer is not a 2xx or a 4xx problem (a 4xx the document lists as plain JSON, such as
    the handshake's 401 `{"allowed": false}`, is one too); None when it is."""
    if status >= 500:
        return f"{status} {payload[:300]!r}"
    if status < 400:
        return None
    if content_type == "application/problem+json":
        problem = json.loads(payload)
        return None if problem.get("status") == status and problem.get("title") else f"{status} malformed problem {payload[:300]!r}"
    listed = route.document["responses"].get(str(status), {}).get("content", {})
    return None if content_type in listed else f"{status} {content_type} {payload[:300]!r}"


def nesting_refusal(status: int, content_type: str, payload: bytes) -> bool:
    """A 400 that says the body nests too deeply: a problem, or on an OCPI route its 2001 envelope."""
    if status != 400:
        return False
    answer = json.loads(payload)
    if content_type == "application/problem+json":
        return "nested" in answer["detail"]
    return answer.get("status_code") == 2001 and "nested" in answer.get("status_message", "")


def edge_bodies(cp: str) -> dict[str, bytes]:
    """Bodies at every edge that is not a depth: sizes up to the limit, numbers, keys, surrogates."""
    event = ev.heartbeat(cp)
    padding = MIB - 200
    one_event = len(json.dumps(event)) + 1
    return {
        "a 1 MiB string": json.dumps({"x": "z" * padding}).encode(),
        "an event with a 1 MiB field": json.dumps({**event, "vendor": "z" * padding}).encode(),
        "1000 small events": json.dumps([event] * 1000).encode(),
        "1 MiB of small events": json.dumps([event] * (padding // one_event)).encode(),
        "1 MiB of empty arrays": array(["[]"] * (padding // 3)).encode(),
        "1 MiB of numbers": array(["12345678901234567890"] * (padding // 21)).encode(),
        "a 1 MiB number": ("1" * padding).encode(),
        "past the body limit": json.dumps({"x": "z" * MIB}).encode(),
        "huge numbers": object_([('"a"', "1e400"), ('"b"', "-1e400"), ('"c"', "1e-400"), ('"d"', "9" * 5000)]).encode(),
        "ints past 64 bits": object_([('"a"', str(2**64)), ('"b"', str(-(2**63) - 1)), ('"c"', str(10**300))]).encode(),
        "an event with ints past 64 bits": object_([('"type"', '"TransactionStarted"'), ('"chargePointId"', json.dumps(cp)),
                                                    ('"transactionId"', str(2**64)), ('"connectorId"', str(2**64 - 1)),
                                                    ('"meterStartWh"', str(10**30))]).encode(),
        "duplicate keys": object_([('"type"', '"ChargerHeartbeat"'), ('"chargePointId"', json.dumps(cp)), ('"type"', '"TransactionEnded"'),
                                   ('"chargePointId"', '"other"')]).encode(),
        "a lone surrogate": object_([('"type"', '"ChargerHeartbeat"'), ('"chargePointId"', '"\\ud800"')]).encode(),
        "a lone surrogate key": object_([('"\\udc00"', "1"), ('"type"', '"ChargerHeartbeat"')]).encode(),
        "a surrogate encoded in UTF-8": b'{"type": "ChargerHeartbeat", "chargePointId": "\xed\xa0\x80"}',
        "a NUL": json.dumps({**event, "vendor": "a\u0000b"}).encode(),
        "an empty body": b"",
    }


DEPTHS_ON_EVERY_ROUTE = sorted({1, 2, MAX_NESTING - 1, MAX_NESTING, MAX_NESTING + 1, 254, 255, 256, 1023, 1024, 1025, 1026, 100_000,
                                MIB // 2 - 10})
DEEPEST_OBJECTS = (MIB - 16) // 6  # `{"a":` and `}` a level: as deep as fits in the body limit


async def test_every_depth_and_every_size_up_to_the_limit_gets_a_2xx_or_a_4xx_problem(make_api, emsp):
    api = await world_api(make_api)
    document = (await served_document(api)).document
    world = await a_world(api, emsp)
    routes = [route for route in routes_of(document, world) if route.reads_body]
    assert {"/v1/gateway/events", "/v1/gateway/chargers/{chargePointId}/auth", "/v1/sites/{siteId}/tariffs", "/v1/commands"} \
        <= {route.template for route in routes}
    wrong: list[str] = []

    # Events nested 1 to 1,100 levels deep: taken up to the limit, a 400 that says so past it.
    events = next(route for route in routes if route.template == "/v1/gateway/events")
    for depth in range(1, 1101):
        for objects in (False, True):
            event = object_([('"type"', '"ChargerHeartbeat"'), ('"chargePointId"', json.dumps(world["chargePointId"])),
                             ('"extra"', nested(depth - 1, "1", objects=objects))])
            status, content_type, payload = await send(api, events, event.encode())
            if depth <= MAX_NESTING and status != 202 or depth > MAX_NESTING and not nesting_refusal(status, content_type, payload):
                wrong.append(f"an event {depth} levels deep ({'objects' if objects else 'arrays'}): {status} {payload[:200]!r}")

    # Every route that reads a body: deep bodies, and every other edge.
    for route in routes:
        for depth in DEPTHS_ON_EVERY_ROUTE:
            for objects in (False, True):
                levels = min(depth, DEEPEST_OBJECTS) if objects else depth
                status, content_type, payload = await send(api, route, nested(levels, objects=objects).encode())
                if (problem := wrong_answer(route, status, content_type, payload)) is not None:
                    wrong.append(f"{route} {levels} levels of {'objects' if objects else 'arrays'}: {problem}")
                elif levels > MAX_NESTING and not nesting_refusal(status, content_type, payload):
                    wrong.append(f"{route} {levels} levels: {status} {payload[:200]!r} is not a refusal of the nesting")
        for name, body in edge_bodies(world["chargePointId"]).items():
            status, content_type, payload = await send(api, route, body)
            if (problem := wrong_answer(route, status, content_type, payload)) is not None:
                wrong.append(f"{route} {name}: {problem}")
            elif name == "past the body limit" and status != 413:
                wrong.append(f"{route} {name}: {status}, not 413")
    assert wrong == [], f"{len(wrong)} wrong answers:\n" + "\n".join(wrong[:40])
    await _everything_accepted_was_applied(api)


def fuzz(loop: asyncio.AbstractEventLoop, api: Api, document: dict[str, Any], world: dict[str, str],
         answers: Counter) -> list[str]:
    """Random JSON to every operation (a bounded number of examples each); one line per operation
    that got a wrong answer, with the smallest body that got it. `answers` counts (route, status)."""
    plausible = [json.dumps(value) for value in [*world.values(), *EVENT_TYPES, format_ts(datetime.now(UTC)), "0.30", "USD", 1, 0]]
    failures = []
    for route in routes_of(document, world):
        schema = route.document.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
        keys, members, shapes = schema_words(schema, document["components"]["schemas"])

        @hypothesis.settings(max_examples=EXAMPLES_WITH_BODY if route.reads_body else EXAMPLES_WITHOUT_BODY, deadline=None,
                             database=None, derandomize=True, suppress_health_check=list(HealthCheck),
                             phases=[Phase.explicit, Phase.generate, Phase.shrink])
        @given(body=bodies(keys, [*plausible, *sorted(members)], shapes))
        def run(body: str) -> None:
            status, content_type, payload = asyncio.run_coroutine_threadsafe(send(api, route, body.encode("utf-8", "surrogatepass")),
                                                                             loop).result(timeout=60)
            answers[(route.template, status)] += 1
            if nesting_refusal(status, content_type, payload):
                answers[(route.template, "nested")] += 1
            problem = wrong_answer(route, status, content_type, payload)
            assert problem is None, f"{route} answered {problem} to {body[:300]}"

        try:
            run()
        except AssertionError as exc:
            failures.append(str(exc).splitlines()[0])
    return failures


async def test_random_json_of_any_shape_on_every_route_gets_no_5xx(make_api, emsp):
    api = await world_api(make_api)
    document = (await served_document(api)).document
    world = await a_world(api, emsp)
    answers: Counter = Counter()
    failures = await asyncio.to_thread(fuzz, asyncio.get_running_loop(), api, document, world, answers)
    assert failures == [], "\n".join(failures)
    # Some of it got past validation, and some was refused for its nesting.
    assert answers[("/v1/gateway/events", 202)] and answers[("/v1/gateway/events", "nested")], answers
    by_status: Counter = Counter()
    for (_, status), count in answers.items():
        if status != "nested":
            by_status[status] += count
    print(f"random JSON: {sum(by_status.values())} requests; by status {dict(sorted(by_status.items()))}")
    await _everything_accepted_was_applied(api)


async def _everything_accepted_was_applied(api: Api) -> None:
    prefix = api.client.app[SETTINGS].amqp_prefix
    depths = await drained(prefix)
    assert all(count == 0 for count in depths.values()), depths
    assert not any(troubled(prefix).values()), troubled(prefix)
