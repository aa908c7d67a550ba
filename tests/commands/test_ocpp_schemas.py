"""Command payloads are checked against OCPP 1.6's own schemas, naming the field that breaks them."""
import pytest

from shared.ocpp_commands import CSMS_ACTIONS, payload_problems

PROFILE = {
    "connectorId": 1,
    "csChargingProfiles": {
        "chargingProfileId": 7, "stackLevel": 0, "chargingProfilePurpose": "TxProfile", "chargingProfileKind": "Absolute",
        "chargingSchedule": {"chargingRateUnit": "W", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7400.1}]},
    },
}


def test_every_central_system_action_of_ocpp16_has_a_schema():
    assert len(CSMS_ACTIONS) == 19
    for action in CSMS_ACTIONS:
        payload_problems(action, {})  # raises when the library has no schema for it


def test_a_valid_charging_profile_passes_with_a_limit_in_tenths():
    assert payload_problems("SetChargingProfile", PROFILE) == []


def test_each_problem_names_its_field():
    bad = {**PROFILE, "connectorId": "one"}
    bad["csChargingProfiles"] = {**PROFILE["csChargingProfiles"], "chargingSchedule": {
        "chargingRateUnit": "W", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7400.15}]}}
    locs = [problem["loc"] for problem in payload_problems("SetChargingProfile", bad)]
    assert locs == [["connectorId"], ["csChargingProfiles", "chargingSchedule", "chargingSchedulePeriod", 0, "limit"]]
    assert payload_problems("SetChargingProfile", bad)[1]["msg"] == "7400.15 is not a multiple of 0.1"


def test_missing_and_unknown_properties_and_enums_are_problems():
    problems = payload_problems("Reset", {"type": "Warm", "delay": 3})
    assert {tuple(p["loc"]): p["msg"] for p in problems} == {
        ("delay",): "Extra inputs are not permitted", ("type",): "'Warm' is not one of ['Hard', 'Soft']"}
    missing = payload_problems("ReserveNow", {"connectorId": 1, "idTag": "TAG"})
    assert [(p["loc"], p["msg"]) for p in missing] == [(["expiryDate"], "Field required"), (["reservationId"], "Field required")]
    assert payload_problems("TriggerMessage", {}) != []
    assert payload_problems("TriggerMessage", {"requestedMessage": "Heartbeat"}) == []


def test_an_action_a_charger_sends_is_not_a_command():
    with pytest.raises(ValueError):
        payload_problems("BootNotification", {})
