"""Events in the exact JSON the reference gateway sends (zeros omitted, values as strings)."""
from __future__ import annotations


def booted(cp: str, ts: str = "2026-11-25T10:00:00Z") -> dict:
    return {"type": "ChargerBooted", "chargePointId": cp, "ts": ts, "vendor": "Alfen", "model": "Eve Single",
            "firmwareVersion": "6.1.2", "ocppVersion": "1.6"}


def heartbeat(cp: str, ts: str = "2026-11-25T10:00:05Z") -> dict:
    return {"type": "ChargerHeartbeat", "chargePointId": cp, "ts": ts}


def status(cp: str, connector: int, status: str, ts: str = "2026-11-25T10:00:10Z", error: str = "NoError") -> dict:
    return {"type": "ConnectorStatusChanged", "chargePointId": cp, "ts": ts, "connectorId": connector,
            "status": status, "errorCode": error}


def started(cp: str, tx: int, meter_start: int = 0, ts: str = "2026-11-25T10:01:00Z", connector: int = 1) -> dict:
    event = {"type": "TransactionStarted", "chargePointId": cp, "ts": ts, "connectorId": connector,
             "transactionId": tx, "idTag": "RFID-0001"}
    if meter_start:
        event["meterStartWh"] = meter_start
    return event


def sample(cp: str, tx: int, value: str, ts: str, *, measurand: str | None = None, unit: str | None = None) -> dict:
    entry: dict = {"value": value, "context": "Sample.Periodic"}
    if measurand:
        entry["measurand"] = measurand
    if unit:
        entry["unit"] = unit
    return {"type": "MeterSample", "chargePointId": cp, "ts": ts, "transactionId": tx, "connectorId": 1, "samples": [entry]}


def ended(cp: str, tx: int, meter_stop: int | None = None, ts: str = "2026-11-25T11:00:00Z", reason: str = "Local") -> dict:
    event = {"type": "TransactionEnded", "chargePointId": cp, "ts": ts, "transactionId": tx, "reason": reason,
             "idTag": "RFID-0001"}
    if meter_stop:
        event["meterStopWh"] = meter_stop
    return event


def command_ack(cp: str, unique_id: str) -> dict:
    return {"type": "CommandAck", "chargePointId": cp, "ts": "2026-11-25T10:02:00Z",
            "commandType": "RemoteStartTransaction", "uniqueId": unique_id}
