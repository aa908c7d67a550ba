"""Every command of OCPP 1.6's six feature profiles: accepted when its payload keeps the OCPP 1.6
schema, delivered as sent, the charger's answer kept; a payload that breaks the schema is a 400
naming the field, however deep; a charger's CallError (the gateway's 422) fails the command at
once with its error code; operators' roles and the audit trail as for every command."""
from __future__ import annotations

import uuid

import pytest

from shared.ocpp_commands import CSMS_ACTIONS
from tests.commands.helpers import command, create, gateway_body, outcome, remote_start
from tests.commands.ocpp_examples import ANSWERS, PAYLOADS
from tests.ops.apidoc import served_document
from tests.ops.test_roles import call, operator
from tests.support import eventually, unique_id


def test_the_examples_cover_every_central_system_action():
    assert set(PAYLOADS) == set(ANSWERS) == set(CSMS_ACTIONS) and len(CSMS_ACTIONS) == 19


async def test_every_type_is_accepted_delivered_as_sent_and_keeps_the_chargers_answer(api, fake_gateway):
    for action in CSMS_ACTIONS:
        body = command(action, PAYLOADS[action])
        unique = unique_id("uid")
        fake_gateway.answer(200, {"commandId": unique, "response": ANSWERS[action]})
        created = await create(api, body)
        assert (created["type"], created["payload"]) == (action, body["payload"])
        done = await outcome(api, created["commandId"])
        assert done["status"] == "Acked" and done["attempts"] == 1, done
        assert (done["payload"], done["response"], done["gatewayCommandId"]) == (body["payload"], ANSWERS[action], unique)
        assert fake_gateway.calls_for(body["idempotencyKey"]) == [gateway_body(body)]


INVALID = [
    ("limit not a multiple of 0.1", "SetChargingProfile",
     {**PAYLOADS["SetChargingProfile"], "csChargingProfiles": {**PAYLOADS["SetChargingProfile"]["csChargingProfiles"],
      "chargingSchedule": {"chargingRateUnit": "W", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7400.15}]}}},
     ["payload", "csChargingProfiles", "chargingSchedule", "chargingSchedulePeriod", 0, "limit"]),
    ("second idTag of a list over 20", "SendLocalList",
     {**PAYLOADS["SendLocalList"], "localAuthorizationList": [{"idTag": "TAG-0001"}, {"idTag": "T" * 21}]},
     ["payload", "localAuthorizationList", 1, "idTag"]),
    ("unknown list status", "SendLocalList",
     {**PAYLOADS["SendLocalList"], "localAuthorizationList": [{"idTag": "TAG-0001", "idTagInfo": {"status": "Fine"}}]},
     ["payload", "localAuthorizationList", 0, "idTagInfo", "status"]),
    ("profile purpose", "ClearChargingProfile", {"chargingProfilePurpose": "MaxProfile"}, ["payload", "chargingProfilePurpose"]),
    ("configuration key over 50", "GetConfiguration", {"key": ["HeartbeatInterval", "k" * 51]}, ["payload", "key", 1]),
    ("no reservation id", "ReserveNow", {k: v for k, v in PAYLOADS["ReserveNow"].items() if k != "reservationId"},
     ["payload", "reservationId"]),
    ("availability type", "ChangeAvailability", {"connectorId": 0, "type": "Off"}, ["payload", "type"]),
    ("connectorId as text", "UnlockConnector", {"connectorId": "2"}, ["payload", "connectorId"]),
    ("vendorId over 255", "DataTransfer", {"vendorId": "v" * 256}, ["payload", "vendorId"]),
    ("a property the action has not", "ClearCache", {"all": True}, ["payload", "all"]),
    ("requested message", "TriggerMessage", {"requestedMessage": "StartTransaction"}, ["payload", "requestedMessage"]),
    ("retries as a fraction", "UpdateFirmware", {**PAYLOADS["UpdateFirmware"], "retries": 1.5}, ["payload", "retries"]),
    ("rate unit", "GetCompositeSchedule", {"connectorId": 1, "duration": 60, "chargingRateUnit": "kW"},
     ["payload", "chargingRateUnit"]),
    ("remote start profile without its schedule", "RemoteStartTransaction",
     {"idTag": "TAG-0001", "chargingProfile": {"chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxProfile",
                                               "chargingProfileKind": "Relative"}},
     ["payload", "chargingProfile", "chargingSchedule"]),
]


@pytest.mark.parametrize(("case", "action", "payload", "loc"), INVALID, ids=[c[0] for c in INVALID])
async def test_a_payload_that_breaks_the_ocpp_schema_is_400_naming_the_field(api, fake_gateway, case, action, payload, loc):
    body = command(action, payload)
    status, problem = await api.admin("POST", "/v1/commands", body)
    assert status == 400 and api.last_response.content_type == "application/problem+json", problem
    assert [e["loc"] for e in problem["errors"]] == [loc], problem["errors"]
    assert all(e["msg"] for e in problem["errors"])
    assert (await api.admin("GET", f"/v1/commands?chargePointId={body['chargePointId']}"))[1]["items"] == []
    assert fake_gateway.calls_for(body["idempotencyKey"]) == []


async def test_a_chargers_call_error_fails_the_command_at_once_and_keeps_what_it_said(api, fake_gateway, pg):
    body = command("ChangeAvailability", PAYLOADS["ChangeAvailability"])
    fake_gateway.call_error("NotSupported", "connector 0 cannot be made Inoperative", {"firmware": "2.1.0"})
    done = await outcome(api, (await create(api, body))["commandId"])
    assert done["status"] == "Failed" and done["attempts"] == 1
    assert "NotSupported" in done["error"] and "connector 0 cannot be made Inoperative" in done["error"]
    assert done["response"] == {"errorCode": "NotSupported", "errorDescription": "connector 0 cannot be made Inoperative",
                                "errorDetails": {"firmware": "2.1.0"}}
    assert len(fake_gateway.calls_for(body["idempotencyKey"])) == 1
    attempt = await pg.fetchrow("SELECT result, http_status FROM commands.attempts WHERE command_id = $1",
                                uuid.UUID(done["commandId"]))
    assert (attempt["result"], attempt["http_status"]) == ("call_error", 422)


async def test_a_call_error_is_never_retried_and_wait_answers_it(api, fake_gateway):
    body = command("Reset", {"type": "Hard"})
    fake_gateway.call_error("InternalError")
    fake_gateway.answer(200, {"commandId": "never-used", "response": {"status": "Accepted"}})  # a retry would take this
    status, done = await api.admin("POST", "/v1/commands?wait=10", body)
    assert status == 200 and done["status"] == "Failed" and done["attempts"] == 1
    assert done["response"]["errorCode"] == "InternalError" and "InternalError" in done["error"]
    assert len(fake_gateway.calls_for(body["idempotencyKey"])) == 1
    fake_gateway.answers.clear()


async def test_a_422_without_an_error_code_is_the_gateway_refusing(api, fake_gateway):
    body = remote_start()
    fake_gateway.answer(422, {"error": "cannot process"})
    done = await outcome(api, (await create(api, body))["commandId"])
    assert done["status"] == "Failed" and done["attempts"] == 1 and done["response"] is None
    assert "422" in done["error"] and "cannot process" in done["error"]


async def test_a_call_error_after_a_502_ends_the_retries(api, fake_gateway):
    body = command("UnlockConnector", {"connectorId": 1})
    fake_gateway.answer(502, {"error": "charger not connected"})
    fake_gateway.call_error("GenericError", "lock jammed")
    done = await outcome(api, (await create(api, body))["commandId"])
    assert done["status"] == "Failed" and done["attempts"] == 2 and done["response"]["errorCode"] == "GenericError"
    assert len(fake_gateway.calls_for(body["idempotencyKey"])) == 2


async def test_metrics_count_call_errors(api, fake_gateway):
    fake_gateway.call_error("NotImplemented")
    await outcome(api, (await create(api, command("GetLocalListVersion", {})))["commandId"])

    async def scraped():
        _, text = await api.anonymous("GET", "/metrics")
        return text if 'cpms_commands_total{status="Failed",type="GetLocalListVersion"}' in text else None

    assert 'cpms_commands_dispatch_attempts_total{result="call_error"}' in await eventually(scraped)


async def test_the_document_describes_each_type_with_its_ocpp_schema(api):
    document = (await served_document(api)).document
    body = document["paths"]["/v1/commands"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    variants = [v["$ref"].rsplit("/", 1)[1] for v in body["oneOf"]]
    assert variants == [f"{action}Command" for action in CSMS_ACTIONS]
    schemas = document["components"]["schemas"]
    profile = schemas["SetChargingProfileCommand"]
    assert profile["properties"]["type"] == {"const": "SetChargingProfile"}
    assert profile["properties"]["payload"] == {"$ref": "#/components/schemas/SetChargingProfilePayload"}
    period = schemas["SetChargingProfilePayload"]["properties"]["csChargingProfiles"]["properties"]["chargingSchedule"][
        "properties"]["chargingSchedulePeriod"]["items"]
    assert period["properties"]["limit"] == {"type": "number", "multipleOf": 0.1}
    assert schemas["Command"]["properties"]["type"]["enum"] == list(CSMS_ACTIONS)


async def test_roles_and_audit_as_for_every_command(api, fake_gateway):
    viewer, finance = await operator(api, "viewer"), await operator(api, "finance")
    name = f"ops-{uuid.uuid4().hex[:6]}"
    alice = await operator(api, "operator", name)
    body = command("SetChargingProfile", PAYLOADS["SetChargingProfile"])
    status, problem = await call(api, "POST", "/v1/commands", viewer, json=body)
    assert status == 403 and "operator" in problem["detail"]
    refused = {**command("SetChargingProfile", {"connectorId": 1}), "chargePointId": body["chargePointId"]}
    assert (await call(api, "POST", "/v1/commands", alice, json=refused))[0] == 400  # not audited
    status, created = await call(api, "POST", "/v1/commands", alice, json=body)
    assert status == 202, created

    async def trail():
        status, page = await call(api, "GET", f"/v1/audit?actor={name}&limit=500", finance)
        assert status == 200, page
        return page["items"] or None

    [entry] = await eventually(trail)
    assert (entry["entity"], entry["method"], entry["role"], entry["before"]) == ("command", "POST", "operator", None)
    assert entry["after"]["commandId"] == created["commandId"]
    assert (entry["after"]["type"], entry["after"]["payload"]) == ("SetChargingProfile", body["payload"])
    await outcome(api, created["commandId"])
