"""Operators, roles and the audit trail (CONTRACT section 10): every route answers each role as
the contract says (viewer reads; operator also writes chargers, tokens, sessions and commands;
finance also sites, tariffs, wallets and settlements; admin all, operators included), a revoked
token is refused on its very next request in every process, every accepted write is in the audit
trail with who did it and the entity before and after, and no token is ever logged or audited."""
from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
import uuid

import pytest

from aiohttp.test_utils import TestClient, TestServer

from services.catalogue import SERVICES
from shared.app import OPENAPI, create_app
from shared.jsonutil import loads
from tests.support import GATEWAY_KEY, Api, eventually, unique_id

ROLES = ("viewer", "operator", "finance", "admin")
SAMPLES = {"chargePointId": "CP-ROLES", "idTag": "RFID-ROLES", "name": "nobody-here", "asset": "swagger-ui.css"}


def needed(method: str, path: str) -> str:
    """The least role of a route, as CONTRACT section 10 words it."""
    if path.startswith("/v1/operators"):
        return "admin"
    if path == "/v1/audit":
        return "finance"
    if method == "GET" or path.endswith("/quote"):  # a quote only reads
        return "viewer"
    if path.startswith("/v1/ocpi/"):  # roaming partners: created and registered by an admin (section 12)
        return "admin"
    if re.match(r"^/v1/(sites|settlements)", path):
        return "finance"
    return "operator"


async def operator(api, role: str, name: str | None = None) -> str:
    status, created = await api.admin("POST", "/v1/operators", {"name": name or f"{role}-{uuid.uuid4().hex[:8]}", "role": role})
    assert status == 201 and created["token"].startswith("cpms_"), created
    return created["token"]


async def call(api, method: str, path: str, token: str | None, json=None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await api.client.request(method, path, headers=headers, json=json)
    body = await response.read()
    return response.status, (loads(body) if body and response.content_type.endswith("json") else {})


def operator_routes(api) -> list[tuple[str, str]]:
    document = loads(api.client.server.app[OPENAPI])
    routes = []
    for template, methods in document["paths"].items():
        for method in methods:
            if template.startswith("/v1/") and not template.startswith("/v1/gateway/"):
                routes.append((method.upper(), template))
    return sorted(routes)


def concrete(template: str) -> str:
    return re.sub(r"{(\w+)}", lambda m: SAMPLES.get(m.group(1), str(uuid.uuid4())), template)


async def test_every_route_answers_every_role_as_the_contract_says(api):
    tokens = {role: await operator(api, role) for role in ROLES}
    routes = operator_routes(api)
    assert len(routes) >= 30
    for method, template in routes:
        path = concrete(template)
        for role, token in tokens.items():
            # An empty body: a route the role may use refuses it as invalid (or names nothing), after the role check.
            status, body = await call(api, method, path, token, json={} if method in ("POST", "PUT") else None)
            allowed = ROLES.index(role) >= ROLES.index(needed(method, template))
            if allowed:
                assert status not in (401, 403), (method, template, role, status, body)
            else:
                assert status == 403 and body["status"] == 403 and needed(method, template) in body["detail"], (
                    method, template, role, status, body)
        assert (await call(api, method, path, None))[0] == 401, (method, template)
        assert (await call(api, method, path, "cpms_not-a-real-token"))[0] == 401, (method, template)


async def test_operator_tokens_do_not_open_the_gateway_routes(api):
    token = await operator(api, "admin")
    status, _ = await call(api, "POST", "/v1/gateway/events", token, json={"type": "ChargerHeartbeat", "chargePointId": "CP-X"})
    assert status == 401
    status, _ = await call(api, "GET", "/v1/chargers", GATEWAY_KEY)
    assert status == 401


@pytest.fixture
async def billing_beside(api, settings):
    """A billing process of its own beside the all-in-one one, on the same database and broker
    (as `cpms run billing` would be): it checks tokens in its own copy of the operators."""
    client = TestClient(TestServer(create_app(settings, [SERVICES["billing"]])))
    await client.start_server()
    yield Api(client, database_url=settings.database_url)
    await client.close()  # the broker objects are the shared ones: they stay


async def test_a_revoked_token_is_refused_at_once_by_every_process(api, billing_beside):
    billing = billing_beside
    name = f"revoked-{uuid.uuid4().hex[:8]}"
    token = await operator(api, "finance", name)
    assert (await call(billing, "GET", "/v1/settlements", token))[0] == 200
    assert (await call(api, "GET", "/v1/sessions", token))[0] == 200
    status, _ = await api.admin("DELETE", f"/v1/operators/{name}")
    assert status == 204
    assert (await call(billing, "GET", "/v1/settlements", token))[0] == 401
    assert (await call(api, "GET", "/v1/sessions", token))[0] == 401
    _, listed = await api.admin("GET", "/v1/operators")
    assert name not in [o["name"] for o in listed["items"]] and all("token" not in o for o in listed["items"])
    assert (await api.admin("DELETE", f"/v1/operators/{name}"))[0] == 404


async def test_every_accepted_write_is_in_the_audit_trail_and_no_token_anywhere(api, caplog):
    caplog.set_level(logging.DEBUG)
    name = f"alice-{uuid.uuid4().hex[:6]}"
    alice = await operator(api, "operator", name)
    id_tag = unique_id("AUD")[:20]
    assert (await call(api, "POST", "/v1/tokens", alice, json={"idTag": id_tag}))[0] == 201
    assert (await call(api, "PUT", f"/v1/tokens/{id_tag}", alice, json={"status": "Blocked"}))[0] == 200
    assert (await call(api, "PUT", f"/v1/tokens/{id_tag}", alice, json={"status": "Suspended"}))[0] == 400  # refused: not audited
    viewer, finance = await operator(api, "viewer"), await operator(api, "finance")
    assert (await call(api, "GET", "/v1/audit", viewer))[0] == 403

    async def trail():
        status, body = await call(api, "GET", f"/v1/audit?entity=token&entityId={id_tag}", finance)
        assert status == 200, body
        return body["items"] if len(body["items"]) == 2 else None

    replaced, created = await eventually(trail)
    assert (created["actor"], created["role"], created["method"], created["before"]) == (name, "operator", "POST", None)
    assert created["after"]["status"] == "Accepted"
    assert (replaced["method"], replaced["path"], replaced["before"]["status"], replaced["after"]["status"]) == (
        "PUT", f"/v1/tokens/{id_tag}", "Accepted", "Blocked")
    _, mine = await call(api, "GET", f"/v1/audit?actor={name}&limit=500", finance)
    assert {e["entityId"] for e in mine["items"]} == {id_tag}

    _, made = await call(api, "GET", f"/v1/audit?entity=operator&entityId={name}", finance)
    assert made["items"][0]["actor"] == "admin" and "token" not in made["items"][0]["after"]
    _, everything = await call(api, "GET", "/v1/audit?limit=500", finance)
    text = str(everything) + caplog.text
    for token in (alice, viewer, finance):
        assert token not in text


async def test_cpms_operator_create_prints_a_token_once_that_works(api, settings):
    name = f"cli-{uuid.uuid4().hex[:6]}"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", "operator", "create", "--name", name, "--role", "viewer",
        env={**os.environ, "CPMS_DATABASE_URL": settings.database_url, "CPMS_AMQP_URL": settings.amqp_url,
             "CPMS_AMQP_PREFIX": settings.amqp_prefix, "CPMS_LOG_LEVEL": "WARNING"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    [token] = out.decode().split()
    assert (await call(api, "GET", "/v1/sessions", token))[0] == 200
    assert (await call(api, "POST", "/v1/tokens", token, json={"idTag": "NOPE"}))[0] == 403


@pytest.mark.parametrize("body", [{"name": "Bad Name", "role": "viewer"}, {"name": "ok-name", "role": "root"}, {"name": "ok"}])
async def test_a_bad_operator_is_a_400_naming_the_field(api, body):
    status, problem = await api.admin("POST", "/v1/operators", body)
    assert status == 400 and problem["errors"], problem
