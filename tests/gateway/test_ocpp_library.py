"""What the gateway takes from the `ocpp` library instead of its ChargePoint (routes_of and
answer_call in services/gateway/charge_point.py): the `@on` route map built from the class, the
schema checks and the CallError each violation becomes, the compiled schemas kept, and the
answer's camelCase payload. A release of the library that changes any of these fails here."""
from __future__ import annotations

import pytest
from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.exceptions import FormatViolationError, InternalError, ProtocolError, TypeConstraintViolationError
from ocpp.messages import Call, CallError, get_validator, validate_payload
from ocpp.v16 import call_result
from ocpp.v16.enums import RegistrationStatus

from services.gateway.charge_point import OCPP_VERSION, ChargerConnection

SCHEMA_CHECKED = {"BootNotification", "DataTransfer", "DiagnosticsStatusNotification", "FirmwareStatusNotification", "Heartbeat"}
LENIENT = {"Authorize", "MeterValues", "StartTransaction", "StatusNotification", "StopTransaction"}


def test_the_route_map_of_the_class_has_every_handler_with_its_schema_check():
    routes = ChargerConnection.routes
    assert set(routes) == SCHEMA_CHECKED | LENIENT
    assert {action for action, (_, checked) in routes.items() if checked} == SCHEMA_CHECKED
    handler, _ = routes["Heartbeat"]
    assert handler.__name__ == "on_heartbeat" and callable(handler)


@pytest.mark.parametrize(("payload", "error"), [
    ({"chargePointVendor": "Alfen"}, ProtocolError),  # required field missing
    ({"chargePointVendor": "A", "chargePointModel": "B", "colour": "red"}, FormatViolationError),  # field not in the schema
    ({"chargePointVendor": 7, "chargePointModel": "B"}, TypeConstraintViolationError),
    ({"chargePointVendor": "A" * 21, "chargePointModel": "B"}, TypeConstraintViolationError),  # longer than allowed
])
async def test_a_schema_violation_raises_the_ocpp_error_the_charger_hears(payload, error):
    with pytest.raises(error):
        await validate_payload(Call("u-1", "BootNotification", payload), OCPP_VERSION)
    await validate_payload(Call("u-2", "BootNotification", {"chargePointVendor": "A", "chargePointModel": "B"}), OCPP_VERSION)


def test_compiled_schemas_are_kept_not_rebuilt_per_call():
    assert get_validator(2, "StatusNotification", OCPP_VERSION) is get_validator(2, "StatusNotification", OCPP_VERSION)
    assert get_validator(3, "BootNotification", OCPP_VERSION) is get_validator(3, "BootNotification", OCPP_VERSION)


def test_an_answer_becomes_a_camel_case_payload_without_the_fields_left_unset():
    boot = call_result.BootNotification(current_time="2026-11-25T10:00:00.000Z", interval=300, status=RegistrationStatus.accepted)
    assert snake_to_camel_case(remove_nones(serialize_as_dict(boot))) == {
        "currentTime": "2026-11-25T10:00:00.000Z", "interval": 300, "status": "Accepted"}
    authorized = call_result.Authorize(id_tag_info={"status": "Accepted", "expiryDate": None, "parentIdTag": "P-1"})
    assert snake_to_camel_case(remove_nones(serialize_as_dict(authorized))) == {
        "idTagInfo": {"status": "Accepted", "parentIdTag": "P-1"}}


def test_a_handlers_exception_becomes_its_call_error():
    refusal = Call("u-3", "MeterValues", {}).create_call_error(TypeConstraintViolationError(description="x", details={"field": "f"}))
    assert isinstance(refusal, CallError)
    assert (refusal.error_code, refusal.error_description, refusal.error_details) == ("TypeConstraintViolation", "x", {"field": "f"})
    assert Call("u-4", "Heartbeat", {}).create_call_error(InternalError(description="later")).error_code == "InternalError"
    bug = Call("u-5", "Heartbeat", {}).create_call_error(KeyError("oops"))
    assert (bug.error_code, bug.error_details) == ("InternalError", {})
