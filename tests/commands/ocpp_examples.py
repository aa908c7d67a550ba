"""One valid payload of every central-system action of OCPP 1.6, and an answer a charger may give
to it (a valid CallResult payload), as an operator and a charger would write them."""
from __future__ import annotations

PROFILE = {
    "chargingProfileId": 7, "transactionId": 42, "stackLevel": 0, "chargingProfilePurpose": "TxProfile",
    "chargingProfileKind": "Absolute",
    "chargingSchedule": {"chargingRateUnit": "W", "startSchedule": "2026-11-25T10:00:00Z", "minChargingRate": 1400.5,
                         "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7400.1, "numberPhases": 3},
                                                    {"startPeriod": 900, "limit": 3700.3}]},
}

PAYLOADS: dict[str, dict] = {
    # Core
    "ChangeAvailability": {"connectorId": 0, "type": "Inoperative"},
    "ChangeConfiguration": {"key": "HeartbeatInterval", "value": "300"},
    "ClearCache": {},
    "DataTransfer": {"vendorId": "com.example.cpms", "messageId": "DisplayText", "data": "{\"text\": \"Welcome\"}"},
    "GetConfiguration": {"key": ["HeartbeatInterval", "ChargingScheduleAllowedChargingRateUnit"]},
    "RemoteStartTransaction": {"idTag": "A" * 20, "connectorId": 1, "chargingProfile": {
        k: v for k, v in PROFILE.items() if k != "transactionId"}},
    "RemoteStopTransaction": {"transactionId": 42},
    "Reset": {"type": "Soft"},
    "UnlockConnector": {"connectorId": 2},
    # Firmware Management
    "GetDiagnostics": {"location": "ftp://diagnostics.example.com/upload/", "retries": 3, "retryInterval": 60,
                       "startTime": "2026-11-24T00:00:00Z", "stopTime": "2026-11-25T00:00:00Z"},
    "UpdateFirmware": {"location": "https://firmware.example.com/cp-2.1.0.bin", "retrieveDate": "2026-11-26T02:00:00Z",
                       "retries": 2, "retryInterval": 300},
    # Local Auth List Management
    "GetLocalListVersion": {},
    "SendLocalList": {"listVersion": 3, "updateType": "Differential", "localAuthorizationList": [
        {"idTag": "TAG-0001", "idTagInfo": {"status": "Accepted", "expiryDate": "2027-01-01T00:00:00Z", "parentIdTag": "FLEET-1"}},
        {"idTag": "TAG-0002"},
    ]},
    # Reservation
    "ReserveNow": {"connectorId": 1, "expiryDate": "2026-11-25T11:00:00Z", "idTag": "TAG-0001", "reservationId": 17},
    "CancelReservation": {"reservationId": 17},
    # Smart Charging
    "SetChargingProfile": {"connectorId": 1, "csChargingProfiles": PROFILE},
    "ClearChargingProfile": {"id": 7, "connectorId": 1, "chargingProfilePurpose": "TxProfile", "stackLevel": 0},
    "GetCompositeSchedule": {"connectorId": 1, "duration": 3600, "chargingRateUnit": "W"},
    # Remote Trigger
    "TriggerMessage": {"requestedMessage": "StatusNotification", "connectorId": 1},
}

ANSWERS: dict[str, dict] = {
    "ChangeAvailability": {"status": "Scheduled"},
    "ChangeConfiguration": {"status": "RebootRequired"},
    "ClearCache": {"status": "Accepted"},
    "DataTransfer": {"status": "Accepted", "data": "shown"},
    "GetConfiguration": {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"},
                                              {"key": "ChargingScheduleAllowedChargingRateUnit", "readonly": True, "value": "Power"}]},
    "RemoteStartTransaction": {"status": "Accepted"},
    "RemoteStopTransaction": {"status": "Rejected"},
    "Reset": {"status": "Accepted"},
    "UnlockConnector": {"status": "Unlocked"},
    "GetDiagnostics": {"fileName": "diagnostics-2026-11-25.zip"},
    "UpdateFirmware": {},
    "GetLocalListVersion": {"listVersion": 3},
    "SendLocalList": {"status": "VersionMismatch"},
    "ReserveNow": {"status": "Occupied"},
    "CancelReservation": {"status": "Accepted"},
    "SetChargingProfile": {"status": "Accepted"},
    "ClearChargingProfile": {"status": "Unknown"},
    "GetCompositeSchedule": {"status": "Accepted", "connectorId": 1, "scheduleStart": "2026-11-25T10:00:00Z", "chargingSchedule": {
        "chargingRateUnit": "W", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7400.1}]}},
    "TriggerMessage": {"status": "Accepted"},
}
