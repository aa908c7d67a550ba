"""A seeded generator of malformed requests against every public route: no or wrong keys, wrong
methods, unknown routes, wrong content types, bad JSON, bodies nested too deep, missing fields,
wrong types, out-of-range and huge values, unicode where it does not belong, bad ids and cursors,
oversized bodies.
Every request it makes must be refused: none of them may change anything."""
from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson

from shared.http import MAX_NESTING
from tests.ingest import gateway_events as ev
from tests.ops.any_json import nested
from tests.support import ADMIN_TOKEN, GATEWAY_KEY

MISSING = object()  # a required field removed
STRINGS = ["", " ", "   ", "\u2603\u00e9\U0001F50C", "\u202e\u0000", "\ud7ff" * 3, "x" * 5000, "'; DROP TABLE x; --", "%00%ff"]
# values no pydantic lax mode turns into the field's type
NOT_A_STRING = [123, 4.5, True, ["x"], {"k": "v"}]
NOT_AN_INT = ["abc", "1x", 4.5, ["x"], {"k": 1}, "\u2603"]
NOT_A_BOOL = ["true", 1, "yes", None, [], {}]
NOT_A_UUID = [123, "not-a-uuid", [], {}, "12345678-1234-1234-1234-1234567890123", "\u2603"]
NOT_A_PRICE = ["abc", True, [], {}, "NaN", "Infinity", "-Infinity", "-1", 0, "0", "1e400", "0.30000001", " 0.30", "1" * 400]
BAD_CHARGER_IDS = ["bad id", "\u2603", "x" * 65, "a/b", "semi;colon", "quote'", "tab\there", "%2e%2e"]
BAD_PATH_IDS = ["not-a-uuid", "123", "\u2603", "x" * 300, "00000000-0000-0000-0000-00000000000g", "%00", "-1", "1e99"]


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # {cp} a charger id, {id} a uuid
    key: str | None  # the key the route needs; None for the operational routes
    body: Callable[[random.Random], dict] | None = None  # a well-formed body (never sent as is)
    mutations: dict[str, list[Any]] = field(default_factory=dict)  # field -> values that make the body invalid
    query: tuple[str, ...] = ()  # "page" for limit/cursor, or named query fields with bad values below
    reads_body: bool = True


def _cp(rng: random.Random) -> str:
    return f"MAL-{rng.getrandbits(48):012x}"


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _long(n: int) -> str:
    return "y" * n


ROUTES = [
    Route("POST", "/v1/gateway/chargers/{cp}/auth", GATEWAY_KEY, lambda r: {"presentedSecret": "some-secret-value"},
          {"presentedSecret": [MISSING, *NOT_A_STRING, None, _long(257)], "remoteAddr": [*NOT_A_STRING, _long(257)]}),
    Route("POST", "/v1/gateway/events", GATEWAY_KEY, None),  # bodies from `bad_events`
    Route("POST", "/v1/chargers", ADMIN_TOKEN, lambda r: {"chargePointId": _cp(r), "secret": "long-enough-secret"},
          {"chargePointId": [MISSING, None, *NOT_A_STRING, *BAD_CHARGER_IDS], "secret": [MISSING, None, *NOT_A_STRING, "short", _long(129)],
           "siteId": NOT_A_UUID, "unexpected": ["field"]}),
    Route("PUT", "/v1/chargers/{cp}/secret", ADMIN_TOKEN, lambda r: {"secret": "long-enough-secret"},
          {"secret": [MISSING, None, *NOT_A_STRING, "short", _long(129)], "unexpected": ["field"]}),
    Route("PUT", "/v1/chargers/{cp}/active", ADMIN_TOKEN, lambda r: {"isActive": False},
          {"isActive": [MISSING, *NOT_A_BOOL], "unexpected": ["field"]}),
    Route("PUT", "/v1/chargers/{cp}/site", ADMIN_TOKEN, lambda r: {"siteId": _uuid(r)},
          {"siteId": [MISSING, None, *NOT_A_UUID], "unexpected": ["field"]}),
    Route("GET", "/v1/chargers", ADMIN_TOKEN, query=("page", "siteId", "online", "registered")),
    Route("GET", "/v1/chargers/{cp}", ADMIN_TOKEN),
    Route("GET", "/v1/chargers/{cp}/connectors", ADMIN_TOKEN, query=("page",)),
    Route("PUT", "/v1/chargers/{cp}/connectors/1", ADMIN_TOKEN, lambda r: {"standard": "IEC_62196_T2", "maxElectricPower": 22080},
          {"standard": ["Type2", 7, ""], "format": ["PLUG", 1], "powerType": ["AC"],
           "maxVoltage": [0, -1, "x", 1.5], "maxElectricPower": [0, 2_000_001, "22kW"], "unexpected": ["field"]}),
    Route("GET", "/v1/chargers/{cp}/sessions", ADMIN_TOKEN, query=("page",)),
    Route("GET", "/v1/sessions", ADMIN_TOKEN, query=("page", "status", "siteId")),
    Route("GET", "/v1/sessions/{id}", ADMIN_TOKEN),
    Route("POST", "/v1/sessions/{id}/finalize", ADMIN_TOKEN, query=("force",), reads_body=False),
    Route("POST", "/v1/sites", ADMIN_TOKEN, lambda r: {"name": "Depot"},
          {"name": [MISSING, None, *NOT_A_STRING, "", "   ", _long(201)], "unexpected": ["field"]}),
    Route("GET", "/v1/sites", ADMIN_TOKEN, query=("page",)),
    Route("GET", "/v1/sites/{id}", ADMIN_TOKEN),
    Route("POST", "/v1/sites/{id}/tariffs", ADMIN_TOKEN, lambda r: {"pricePerKwh": "0.30", "currency": "USD"},
          {"pricePerKwh": [MISSING, None, *NOT_A_PRICE], "currency": ["usd", "DOLLARS", 5, [], "\u20ac"], "unexpected": ["field"]}),
    Route("GET", "/v1/sites/{id}/tariffs", ADMIN_TOKEN, query=("page",)),
    Route("POST", "/v1/sites/{id}/wallet", ADMIN_TOKEN, lambda r: {"wallet": "rWALLET"},
          {"wallet": [MISSING, None, *NOT_A_STRING, "", "has space", _long(201)], "unexpected": ["field"]}),
    Route("GET", "/v1/settlements", ADMIN_TOKEN, query=("page", "status", "siteId", "sessionId")),
    Route("GET", "/v1/settlements/{id}", ADMIN_TOKEN),
    Route("POST", "/v1/settlements/{id}/submitted", ADMIN_TOKEN, lambda r: {"chain": "XRPL", "txHash": "ABCDEF"},
          {"chain": [MISSING, None, *NOT_A_STRING, "", "X R P L"], "txHash": [MISSING, None, *NOT_A_STRING, "", _long(201)],
           "externalRef": [*NOT_A_STRING, "", _long(201)], "unexpected": ["field"]}),
    Route("POST", "/v1/settlements/{id}/confirmed", ADMIN_TOKEN, reads_body=False),
    Route("POST", "/v1/settlements/{id}/failed", ADMIN_TOKEN, lambda r: {"error": "rejected by the ledger"},
          {"error": [MISSING, None, *NOT_A_STRING, "", "   ", _long(2001)], "unexpected": ["field"]}),
    Route("POST", "/v1/commands", ADMIN_TOKEN, lambda r: {"type": "Reset", "chargePointId": _cp(r), "idempotencyKey": _cp(r), "payload": {"type": "Hard"}},
          {"type": [MISSING, None, "Explode", "reset", *NOT_A_STRING], "chargePointId": [MISSING, None, *NOT_A_STRING, *BAD_CHARGER_IDS],
           "idempotencyKey": [MISSING, None, "", _long(129), *NOT_A_STRING],
           "payload": [MISSING, None, "Hard", [], {}, {"type": "Medium"}, {"type": "Hard", "extra": 1}, {"type": ["Hard"]}],
           "unexpected": ["field"]}),
    Route("GET", "/v1/commands", ADMIN_TOKEN, query=("page", "status")),
    Route("GET", "/v1/commands/{id}", ADMIN_TOKEN),
    Route("GET", "/livez", None), Route("GET", "/readyz", None), Route("GET", "/healthz", None), Route("GET", "/metrics", None),
    Route("GET", "/openapi.json", None),
]

METHODS: dict[str, set[str]] = {}
for _route in ROUTES:
    METHODS.setdefault(_route.template, set()).add(_route.method)

# command payloads that break the limits of their type
BAD_COMMANDS = [
    ("RemoteStartTransaction", {"idTag": _long(21)}), ("RemoteStartTransaction", {"idTag": "T", "connectorId": "1"}),
    ("RemoteStartTransaction", {"idTag": "T", "connectorId": 0}), ("RemoteStartTransaction", {}),
    ("RemoteStopTransaction", {"transactionId": "5"}), ("RemoteStopTransaction", {"transactionId": 4.5}),
    ("ChangeConfiguration", {"key": _long(51), "value": "v"}), ("ChangeConfiguration", {"key": "k", "value": _long(501)}),
    ("ChangeConfiguration", {"key": "", "value": "v"}), ("Reset", {"type": "Hard", "delay": 5}),
]

# per event type: fields and values that make the event one CONTRACT section 1 refuses (it cannot be
# attributed, or the reference gateway could not have sent it); every other mistake of a charger is
# taken and flagged (tests/ingest/test_lossless.py)
NOT_A_COUNT = [-1, 2**31, *NOT_AN_INT, True]
EVENT_MUTATIONS: dict[str, dict[str, list[Any]]] = {
    "*": {"type": [MISSING, None, "", *NOT_A_STRING[:2], ["ChargerBooted"]],
          "chargePointId": [MISSING, None, "", _long(256), *NOT_A_STRING],
          "ts": [[], {}, 1795600000, True],
          "eventId": ["", _long(201), *NOT_A_STRING]},
    "ChargerBooted": {},
    "ConnectorStatusChanged": {"connectorId": NOT_A_COUNT},
    "TransactionStarted": {"connectorId": NOT_A_COUNT, "transactionId": [MISSING, None, *NOT_A_COUNT],
                           "meterStartWh": [-1, *NOT_AN_INT, 2**63]},
    "MeterSample": {"samples": ["12", {}, 12], "transactionId": NOT_A_COUNT, "connectorId": NOT_A_COUNT},
    "TransactionEnded": {"transactionId": [MISSING, None, *NOT_A_COUNT], "meterStopWh": [-1, *NOT_AN_INT]},
    "CommandAck": {},
}


def _valid_event(rng: random.Random) -> dict:
    cp, tx = _cp(rng), rng.randint(1, 10_000)
    return rng.choice([
        lambda: ev.booted(cp), lambda: ev.status(cp, 1, "Available"), lambda: ev.started(cp, tx, 10),
        lambda: ev.sample(cp, tx, "123", "2026-11-25T10:30:00Z"), lambda: ev.ended(cp, tx, 500), lambda: ev.command_ack(cp, "u-1"),
    ])()


def _mutate(rng: random.Random, body: dict, mutations: dict[str, list[Any]]) -> dict:
    name = rng.choice(sorted(mutations))
    value = rng.choice(mutations[name])
    body = dict(body)
    if value is MISSING:
        body.pop(name, None)
    else:
        body[name] = value
    return body


def bad_event(rng: random.Random) -> dict:
    event = _valid_event(rng)
    mutations = {**EVENT_MUTATIONS["*"], **EVENT_MUTATIONS[event["type"]]}
    return _mutate(rng, event, mutations)


def bad_events_body(rng: random.Random) -> Any:
    """One invalid event, a batch with one invalid event among valid ones, or a batch of a wrong size."""
    choice = rng.random()
    if choice < 0.6:
        return bad_event(rng)
    if choice < 0.9:
        batch = [_valid_event(rng) for _ in range(rng.randint(1, 20))]
        batch.insert(rng.randrange(len(batch) + 1), bad_event(rng))
        return batch
    if choice < 0.95:
        return []
    return [ev.heartbeat(_cp(rng))] * 1001


@dataclass
class Request:
    kind: str
    method: str
    path: str
    headers: dict[str, str]
    data: bytes | None = None
    params: dict[str, str] | None = None


def _path(rng: random.Random, route: Route, bad_id: bool) -> str:
    cp = rng.choice(BAD_CHARGER_IDS) if bad_id else _cp(rng)
    id_ = rng.choice(BAD_PATH_IDS) if bad_id else _uuid(rng)
    return route.template.replace("{cp}", _quote(cp)).replace("{id}", _quote(id_))


def _quote(segment: str) -> str:
    return quote(segment, safe="")


def _json(value: Any) -> bytes:
    return orjson.dumps(value)


def bad_request(rng: random.Random) -> Request:
    route = rng.choice(ROUTES)
    auth = {"Authorization": f"Bearer {route.key}"} if route.key else {}
    json_headers = {**auth, "Content-Type": "application/json"}
    kinds = ["wrong_method", "unknown_route"]
    if route.key:
        kinds += ["no_key", "wrong_key"]
    if "{" in route.template:
        kinds.append("bad_id")
    if route.query:
        kinds.append("bad_query")
    if route.method in ("POST", "PUT") and route.reads_body:
        kinds += ["content_type", "bad_json", "too_deep", "oversized"] + ["bad_body"] * 6
    kind = rng.choice(kinds)
    if kind == "oversized" and rng.random() > 0.1:  # a megabyte each: a few of them are enough
        kind = "bad_body"
    path = _path(rng, route, bad_id=False)

    def body() -> bytes | None:
        if route.template == "/v1/gateway/events":
            return _json(bad_events_body(rng))
        if route.body is None:
            return None
        if route.template == "/v1/commands" and rng.random() < 0.3:
            command_type, payload = rng.choice(BAD_COMMANDS)
            return _json({**route.body(rng), "type": command_type, "payload": payload})
        return _json(_mutate(rng, route.body(rng), route.mutations))

    if kind == "wrong_method":
        method = rng.choice([m for m in ("GET", "POST", "PUT", "DELETE", "PATCH") if m not in METHODS[route.template]])
        return Request(kind, method, path, json_headers, body())
    if kind == "unknown_route":  # with the key its prefix takes, so the request gets past authentication
        tail = rng.choice(["nothing", "\u2603", "v2", "admin", "chargers/x/y/z", _long(300)])
        prefix = rng.choice(["/v1/", "/", "/v1/gateway/", "/v1/sites/x/"])
        key = GATEWAY_KEY if prefix == "/v1/gateway/" else ADMIN_TOKEN
        return Request(kind, route.method, prefix + _quote(tail), {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                       body())
    if kind == "no_key":
        return Request(kind, route.method, path, {"Content-Type": "application/json"}, body())
    if kind == "wrong_key":
        other = ADMIN_TOKEN if route.key == GATEWAY_KEY else GATEWAY_KEY
        header = rng.choice([f"Bearer {other}", f"Bearer {route.key}x", f"Basic {route.key}", f"bearer{route.key}", "Bearer ",
                             f"Bearer {route.key[:-1]}", "Bearer \u2603"])
        return Request(kind, route.method, path, {"Authorization": header.encode("utf-8").decode("latin-1"),
                                                  "Content-Type": "application/json"}, body())
    if kind == "bad_id":
        # a valid body is sent with ids that cannot exist; the handshake route is left out since a
        # well-formed handshake for an unknown charger is a failed attempt, which it records
        data = body() if route.template.startswith("/v1/gateway/") or route.body is None else _json(route.body(rng))
        return Request(kind, route.method, _path(rng, route, bad_id=True), json_headers, data)
    if kind == "bad_query":
        name = rng.choice(route.query)
        if name == "page":
            params = rng.choice([{"limit": v} for v in ("0", "-1", "501", "abc", "1e3", "10000000000000000000000", "", "\u2603")]
                                + [{"cursor": v} for v in ("garbage", "\u2603", "eyJ4Ijoxfq", "W10", "WyJ4IiwieSJd", "x" * 600, "")])
        elif name == "force":
            params = {"force": rng.choice(["maybe", "2", "\u2603", "truee"])}
        elif name == "status":
            params = {"status": rng.choice(["Bogus", "pending", "", "\u2603"])}
        else:
            params = {name: rng.choice(["not-a-uuid", "123", "\u2603", ""])}
        return Request(kind, route.method, path, json_headers, body(), params)
    if kind == "content_type":
        headers = {**auth, "Content-Type": rng.choice(["text/plain", "application/x-www-form-urlencoded", "application/xml",
                                                       "multipart/form-data; boundary=x", "application/jsonx"])}
        valid = _json([_valid_event(rng)]) if route.body is None else _json(route.body(rng))
        return Request(kind, route.method, path, headers, valid)
    if kind == "bad_json":
        data = rng.choice([b"{", b"[1,", b"{'a': 1}", b"nul", b"\xff\xfe\x00", b"{\"a\": NaN}", b'{"a": 1}}', b"",
                           b'{"a": 1e99999}', b'{"x": "\\ud800"}', b"\x00" * 10, "\u2603".encode("utf-16")])
        return Request(kind, route.method, path, json_headers, data)
    if kind == "too_deep":  # the whole body, or a field of a valid one, nested past the limit
        deep = nested(rng.choice([MAX_NESTING + 1, 255, 256, 1000, 1024, 1025, 5000, 100_000]), objects=rng.random() < 0.5)
        valid = _valid_event(rng) if route.body is None else route.body(rng)
        data = deep if rng.random() < 0.3 else orjson.dumps(valid)[:-1].decode() + ',"deep":' + deep + "}"
        return Request(kind, route.method, path, json_headers, data.encode())
    if kind == "oversized":
        return Request(kind, route.method, path, json_headers, b'{"pad": "' + b"z" * (1024 * 1024 + 10) + b'"}')
    return Request(kind, route.method, path, json_headers, body())
