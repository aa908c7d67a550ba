"""Charger handshake auth: POST /v1/gateway/chargers/{id}/auth."""
from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.catalogue import SERVICES
from shared.app import create_app
from tests.support import Api, unique_id


async def register(api, charge_point_id: str, secret: str = "s3cret-value") -> None:
    status, body = await api.admin("POST", "/v1/chargers", {"chargePointId": charge_point_id, "secret": secret})
    assert status == 201, body


async def auth(api, charge_point_id: str, secret: str):
    return await api.gateway("POST", f"/v1/gateway/chargers/{charge_point_id}/auth", {"presentedSecret": secret, "remoteAddr": "10.0.0.1:5555"})


async def test_right_secret_is_allowed(api):
    cp = unique_id()
    await register(api, cp)
    assert await auth(api, cp, "s3cret-value") == (200, {"allowed": True, "ocppVersion": "1.6"})


async def test_wrong_unknown_and_inactive_get_the_same_401(api):
    cp, inactive = unique_id(), unique_id()
    await register(api, cp)
    await register(api, inactive)
    status, body = await api.admin("PUT", f"/v1/chargers/{inactive}/active", {"isActive": False})
    assert status == 200 and body["isActive"] is False
    answers = [
        await auth(api, cp, "wrong-secret"),
        await auth(api, unique_id(), "s3cret-value"),
        await auth(api, inactive, "s3cret-value"),
    ]
    assert answers == [(401, {"allowed": False})] * 3


async def test_reactivated_charger_is_allowed_again(api):
    cp = unique_id()
    await register(api, cp)
    await api.admin("PUT", f"/v1/chargers/{cp}/active", {"isActive": False})
    await api.admin("PUT", f"/v1/chargers/{cp}/active", {"isActive": True})
    assert (await auth(api, cp, "s3cret-value"))[0] == 200


async def test_rotated_secret_replaces_the_old_one(api):
    cp = unique_id()
    await register(api, cp)
    status, body = await api.admin("PUT", f"/v1/chargers/{cp}/secret", {"secret": "brand-new-secret"})
    assert status == 200 and "secret" not in body
    assert (await auth(api, cp, "s3cret-value"))[0] == 401
    assert (await auth(api, cp, "brand-new-secret"))[0] == 200


async def test_missing_or_wrong_gateway_key_is_401(api):
    cp = unique_id()
    await register(api, cp)
    status, body = await api.anonymous("POST", f"/v1/gateway/chargers/{cp}/auth", {"presentedSecret": "s3cret-value"})
    assert status == 401 and body["status"] == 401
    assert api.last_response.content_type == "application/problem+json"
    status, _ = await api._call("POST", f"/v1/gateway/chargers/{cp}/auth", "not-the-key", {"presentedSecret": "s3cret-value"})
    assert status == 401
    # the admin token is not a gateway key, nor the other way round
    status, _ = await api._call("POST", f"/v1/gateway/chargers/{cp}/auth", "test-admin-token", {"presentedSecret": "s3cret-value"})
    assert status == 401
    status, _ = await api._call("POST", "/v1/chargers", "test-gateway-key", {"chargePointId": unique_id(), "secret": "abcdefgh"})
    assert status == 401


async def test_repeated_failures_are_throttled_with_retry_after(api, settings):
    cp = unique_id()
    await register(api, cp)
    for _ in range(settings.auth_max_failures):
        assert (await auth(api, cp, "wrong-secret"))[0] == 401
    status, body = await auth(api, cp, "s3cret-value")  # even the right secret waits now
    assert status == 429, body
    retry_after = int(api.last_response.headers["Retry-After"])
    assert 0 < retry_after <= settings.auth_failure_window_seconds
    # another charger is not affected
    other = unique_id()
    await register(api, other)
    assert (await auth(api, other, "s3cret-value"))[0] == 200


async def test_registration_conflict_and_validation(api):
    cp = unique_id()
    await register(api, cp)
    status, body = await api.admin("POST", "/v1/chargers", {"chargePointId": cp, "secret": "another-secret"})
    assert status == 409 and body["title"] == "Charger exists"
    status, body = await api.admin("POST", "/v1/chargers", {"chargePointId": "has space", "secret": "x"})
    assert status == 400
    assert {tuple(e["loc"]) for e in body["errors"]} == {("chargePointId",), ("secret",)}
    status, body = await api.admin("PUT", f"/v1/chargers/{unique_id()}/secret", {"secret": "brand-new-secret"})
    assert status == 404


@pytest.fixture
async def ingest_beside(settings):
    """An ingest process of its own beside the all-in-one one, on the same database and broker (as
    `cpms run ingest` would be), with its own memory of verified secrets."""
    client = TestClient(TestServer(create_app(settings, [SERVICES["ingest"]])))
    await client.start_server()
    yield Api(client, database_url=settings.database_url)
    await client.close()  # the broker objects are the shared ones: they stay


async def test_a_remembered_secret_gives_way_at_once_to_a_rotation_or_a_deactivation_in_every_process(api, ingest_beside):
    """A process remembers the secrets it verified, so a reconnecting fleet is not a scrypt each.
    Another ingest process must see every change on its very next handshake, as this one does."""
    other = ingest_beside
    cp = unique_id()
    await register(api, cp)
    for process in (api, other):
        for _ in range(2):  # verified, then remembered
            assert (await auth(process, cp, "s3cret-value"))[0] == 200
        assert (await auth(process, cp, "s3cret-valuf"))[0] == 401  # memory never admits another secret
    status, _ = await api.admin("PUT", f"/v1/chargers/{cp}/secret", {"secret": "brand-new-secret"})
    assert status == 200
    for process in (api, other):
        assert (await auth(process, cp, "s3cret-value"))[0] == 401
        assert (await auth(process, cp, "brand-new-secret"))[0] == 200
    status, _ = await api.admin("PUT", f"/v1/chargers/{cp}/active", {"isActive": False})
    assert status == 200
    for process in (api, other):
        assert (await auth(process, cp, "brand-new-secret"))[0] == 401
    await api.admin("PUT", f"/v1/chargers/{cp}/active", {"isActive": True})
    for process in (api, other):
        assert (await auth(process, cp, "brand-new-secret"))[0] == 200
