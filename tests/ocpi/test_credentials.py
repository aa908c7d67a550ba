"""The registration handshake both ways, the token's rotation and unregistration (credentials
module), and the partners as the operator sees them."""
from __future__ import annotations

from tests.ocpi.conftest import Cpo
from tests.ocpi.emsp import Emsp, token_header


async def test_an_emsp_registers_with_token_a_and_then_calls_with_token_c(cpo: Cpo, emsp: Emsp) -> None:
    created = await cpo.create_partner()
    assert created["versionsUrl"] == f"{cpo.url}/ocpi/versions" and created["status"] == "PENDING"

    status, answer = await emsp.register_with(created["versionsUrl"], created["tokenA"])

    assert status == 200 and answer["status_code"] == 1000, answer
    credentials = answer["data"]
    assert credentials["url"] == f"{cpo.url}/ocpi/versions"
    assert credentials["roles"] == [{"role": "CPO", "business_details": {"name": "CPMS"}, "party_id": "CPM",
                                     "country_code": "NL"}]
    assert credentials["token"] != created["tokenA"]
    # token A stops working; token C works
    status, body, _ = await emsp.call("GET", f"{cpo.url}/ocpi/versions", token=created["tokenA"])
    assert status == 401 and body["status_code"] == 2000
    status, body, _ = await emsp.call("GET", f"{cpo.url}/ocpi/2.2.1/credentials")
    assert status == 200 and body["data"]["token"] == credentials["token"]
    # the CPMS read the eMSP's endpoints with its token B
    partner = await cpo.partner(created["partnerId"])
    assert partner["status"] == "REGISTERED" and partner["version"] == "2.2.1"
    assert {"identifier": "locations", "role": "RECEIVER", "url": f"{emsp.url}/ocpi/emsp/2.2.1/locations"} in partner["endpoints"]
    assert partner["roles"][0]["party_id"] == "EMS" and partner["pushBacklog"] == 0


async def test_a_second_post_is_405_and_put_rotates_the_token(cpo: Cpo, emsp: Emsp) -> None:
    await cpo.registered_emsp(emsp)
    old_token = emsp.cpo_token
    status, body, _ = await emsp.call("POST", emsp.cpo_endpoints[("credentials", "SENDER")], json=emsp.credentials("x" * 10))
    assert status == 405 and body["status_code"] == 2000

    status, answer = await emsp.update_credentials()

    assert status == 200 and answer["status_code"] == 1000
    assert emsp.cpo_token != old_token
    status, _, _ = await emsp.call("GET", f"{cpo.url}/ocpi/2.2.1/credentials", token=old_token)
    assert status == 401
    status, body, _ = await emsp.call("GET", f"{cpo.url}/ocpi/2.2.1/credentials")
    assert status == 200 and body["data"]["token"] == emsp.cpo_token


async def test_delete_unregisters_and_no_token_of_the_partner_works(cpo: Cpo, emsp: Emsp) -> None:
    created = await cpo.registered_emsp(emsp)

    status, body, _ = await emsp.call("DELETE", f"{cpo.url}/ocpi/2.2.1/credentials")

    assert status == 200 and body["status_code"] == 1000
    status, _, _ = await emsp.call("GET", f"{cpo.url}/ocpi/versions")
    assert status == 401
    assert (await cpo.partner(created["partnerId"]))["status"] == "UNREGISTERED"


async def test_put_and_delete_before_registering_are_405(cpo: Cpo, emsp: Emsp) -> None:
    created = await cpo.create_partner()
    credentials_url = f"{cpo.url}/ocpi/2.2.1/credentials"
    for method in ("PUT", "DELETE"):
        status, body, _ = await emsp.call(method, credentials_url, token=created["tokenA"], json=emsp.credentials("b" * 10))
        assert status == 405 and body["status_code"] == 2000, (method, status, body)
    status, body, _ = await emsp.call("GET", credentials_url, token=created["tokenA"])
    assert status == 200 and body["data"]["token"] == created["tokenA"]


async def test_the_cpms_registers_itself_at_an_emsp(cpo: Cpo, emsp: Emsp) -> None:
    created = await cpo.create_partner()
    token_a = emsp.issue_token_a()

    status, partner = await cpo.api.admin("POST", f"/v1/ocpi/partners/{created['partnerId']}/register",
                                          {"versionsUrl": emsp.versions_url, "token": token_a})

    assert status == 200, partner
    assert partner["status"] == "REGISTERED" and partner["roles"][0]["role"] == "EMSP"
    # the eMSP read our versions with the token B we sent, and now calls us with it
    assert emsp.cpo_token and ("credentials", "SENDER") in emsp.cpo_endpoints
    status, body, _ = await emsp.call("GET", f"{cpo.url}/ocpi/2.2.1/credentials")
    assert status == 200 and body["data"]["token"] == emsp.cpo_token
    # the partner's token A from us no longer works; registering twice is a conflict
    status, _, _ = await emsp.call("GET", f"{cpo.url}/ocpi/versions", token=created["tokenA"])
    assert status == 401
    status, problem = await cpo.api.admin("POST", f"/v1/ocpi/partners/{created['partnerId']}/register",
                                          {"versionsUrl": emsp.versions_url, "token": token_a})
    assert status == 409, problem


async def test_registering_at_a_partner_that_refuses_changes_nothing(cpo: Cpo, emsp: Emsp) -> None:
    created = await cpo.create_partner()
    status, problem = await cpo.api.admin("POST", f"/v1/ocpi/partners/{created['partnerId']}/register",
                                          {"versionsUrl": emsp.versions_url, "token": "not-a-token-it-gave"})
    assert status == 422 and problem["title"] == "Partner refused", problem
    # token A still registers
    status, answer = await emsp.register_with(created["versionsUrl"], created["tokenA"])
    assert status == 200 and answer["status_code"] == 1000


async def test_a_partner_that_does_not_answer_its_versions_gets_3001(cpo: Cpo, emsp: Emsp) -> None:
    created = await cpo.create_partner()
    status, answer, _ = await emsp.call("POST", f"{cpo.url}/ocpi/2.2.1/credentials", token=created["tokenA"],
                                        json={**emsp.credentials("unknown-to-the-emsp"), "url": f"{emsp.url}/nowhere"})
    assert status == 200 and answer["status_code"] == 3001, answer
    status, answer = await emsp.register_with(created["versionsUrl"], created["tokenA"])  # token A still works
    assert status == 200 and answer["status_code"] == 1000


async def test_wrong_or_missing_tokens_are_401_envelopes(cpo: Cpo, emsp: Emsp) -> None:
    for headers in ({}, {"Authorization": "Token"}, {"Authorization": token_header("nobody")}, {"Authorization": "Bearer x"}):
        status, body, _ = await emsp.call("GET", f"{cpo.url}/ocpi/versions", headers=headers)
        assert status == 401 and body["status_code"] == 2000 and "timestamp" in body, (headers, body)


async def test_a_plain_token_is_accepted_and_request_ids_are_echoed(cpo: Cpo, emsp: Emsp) -> None:
    await cpo.registered_emsp(emsp)
    status, body, headers = await emsp.call("GET", f"{cpo.url}/ocpi/2.2.1", headers={
        "Authorization": f"Token {emsp.cpo_token}", "X-Request-ID": "req-1", "X-Correlation-ID": "corr-1"})
    assert status == 200 and body["status_code"] == 1000
    assert headers["X-Request-ID"] == "req-1" and headers["X-Correlation-ID"] == "corr-1"
    identifiers = {(e["identifier"], e["role"]) for e in body["data"]["endpoints"]}
    assert ("credentials", "SENDER") in identifiers


async def test_bad_credentials_bodies_are_2001(cpo: Cpo, emsp: Emsp) -> None:
    created = await cpo.create_partner()
    url = f"{cpo.url}/ocpi/2.2.1/credentials"
    for body in ({}, {"token": "x", "url": "not a url", "roles": []}, [1, 2], {"token": "é" * 3, "url": "http://a", "roles": []}):
        status, answer, _ = await emsp.call("POST", url, token=created["tokenA"], json=body)
        assert status == 400 and answer["status_code"] == 2001, (body, answer)
    status, answer, _ = await emsp.call("POST", url, token=created["tokenA"], headers={"Content-Type": "application/json"})
    assert status == 400 and answer["status_code"] == 2001
    # nothing changed: token A still registers
    status, answer = await emsp.register_with(created["versionsUrl"], created["tokenA"])
    assert status == 200 and answer["status_code"] == 1000


async def test_partner_routes_need_an_admin(cpo: Cpo) -> None:
    status, problem = await cpo.api.anonymous("GET", "/v1/ocpi/partners")
    assert status == 401
    status, problem = await cpo.api.admin("POST", "/v1/ocpi/partners", {"name": ""})
    assert status == 400 and problem["errors"]
    name = "unique-partner-name"
    await cpo.create_partner(name)
    status, problem = await cpo.api.admin("POST", "/v1/ocpi/partners", {"name": name})
    assert status == 409
    status, problem = await cpo.api.admin("POST", "/v1/ocpi/partners/not-a-uuid/register", {"versionsUrl": "http://x", "token": "t"})
    assert status == 404
