"""What a charger's call becomes for ingest: the events of CONTRACT section 1, each with an
`eventId` made from the charger id and the call's content (so a charger's resend of the same
message is one event), the charger's timestamps as sent, and transaction ids a charger never
gets twice in a day. Pure functions: nothing here talks to anyone."""
from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any


from shared.jsonutil import format_ts

EARLIEST_PLAUSIBLE = datetime(2010, 1, 1, tzinfo=UTC)
LATEST_PLAUSIBLE_AHEAD = timedelta(hours=24)
_TX_SECONDS = 2**26  # about 2.1 years of whole seconds
_TX_CONNECTORS = 16
_TX_FROM_CLOCK = 2**30  # ids below come from the charger's clock, ids from here up from a hash


class Unreadable(Exception):
    """A field a call needs cannot be read (not an integer where one must be): the charger hears
    TypeConstraintViolation, and nothing goes to ingest."""

    def __init__(self, field: str, expected: str) -> None:
        super().__init__(f"{field} must be {expected}")
        self.field = field


def now_ms() -> datetime:
    """The gateway's clock, to the millisecond: the `ts` of what carries no charger timestamp."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def stamp(when: datetime) -> str:
    """RFC 3339 in UTC with milliseconds: `2026-11-25T10:00:00.123Z`."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def integer(payload: dict[str, Any], field: str, *, required: bool = True) -> int | None:
    value = payload.get(field)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
        raise Unreadable(field, "an integer from 0 to 2147483647")
    return value


def _canonical(value: Any) -> bytes:
    # the standard library's encoder: a charger may send integers beyond 64 bits
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def call_key(charge_point_id: str, action: str, payload: dict[str, Any], received_at: datetime | None = None) -> str:
    """The identity of one call's content: the same message sent again has the same key. A message
    without a timestamp of the charger's (a boot, a heartbeat) adds its receipt time, or two boots
    an hour apart would be one."""
    parts = [charge_point_id, action, payload]
    if received_at is not None:
        parts.append(format_ts(received_at))
    return hashlib.sha256(_canonical(parts)).hexdigest()[:40]


def identified(key: str, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each event of one call with its eventId: the call's key and the event's place in the call."""
    return [{**event, "eventId": f"ocpp:{key}:{index}"} for index, event in enumerate(events)]


def parse_charger_ts(value: Any) -> datetime | None:
    """A charger's timestamp when it is a plausible instant; None when unreadable or implausible
    (chargers boot at 1970 before their clock is set)."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError:
        return None
    if parsed < EARLIEST_PLAUSIBLE or parsed > datetime.now(UTC) + LATEST_PLAUSIBLE_AHEAD:
        return None
    return parsed


def transaction_id(charge_point_id: str, payload: dict[str, Any]) -> int:
    """The id a StartTransaction gets, the same for a resend of the same message, derived from the
    message alone (the gateway keeps no state): from the charger's start time in whole seconds
    (about 2.1 years before it repeats) and its connector (mod 16), below 2^30; when the charger's
    clock is implausible, from a hash of the message, from 2^30 up. README "Transaction ids"."""
    started = parse_charger_ts(payload.get("timestamp"))
    connector = payload.get("connectorId")
    if started is not None and isinstance(connector, int):
        seconds = int(started.timestamp()) % _TX_SECONDS
        return 1 + seconds * _TX_CONNECTORS + connector % _TX_CONNECTORS
    digest = hashlib.sha256(_canonical([charge_point_id, payload])).digest()
    return _TX_FROM_CLOCK + int.from_bytes(digest[:4], "big") % (2**31 - _TX_FROM_CLOCK)


def _ts(payload: dict[str, Any], received_at: datetime) -> str:
    """The charger's timestamp as sent (fraction and offset kept, an unreadable one too: ingest
    flags it), or the receipt time when it sent none."""
    value = payload.get("timestamp")
    return value if isinstance(value, str) else stamp(received_at)


def samples_of(meter_value: Any) -> list[Any]:
    """A MeterValue's sampledValue entries as MeterSample samples: as the charger sent them."""
    if not isinstance(meter_value, dict) or not isinstance(meter_value.get("sampledValue"), list):
        return []
    return meter_value["sampledValue"]


# --- one function per charger call that reports something ------------------------------------

def booted(cp: str, payload: dict[str, Any], received_at: datetime) -> list[dict[str, Any]]:
    event = {"type": "ChargerBooted", "chargePointId": cp, "vendor": payload.get("chargePointVendor"),
             "model": payload.get("chargePointModel"), "ocppVersion": "1.6", "ts": stamp(received_at)}
    if payload.get("firmwareVersion") is not None:
        event["firmwareVersion"] = payload["firmwareVersion"]
    return [event]


def heartbeat(cp: str, received_at: datetime) -> list[dict[str, Any]]:
    return [{"type": "ChargerHeartbeat", "chargePointId": cp, "ts": stamp(received_at)}]


def status_changed(cp: str, payload: dict[str, Any], received_at: datetime) -> list[dict[str, Any]]:
    return [{"type": "ConnectorStatusChanged", "chargePointId": cp, "connectorId": integer(payload, "connectorId"),
             "status": payload.get("status"), "errorCode": payload.get("errorCode"), "ts": _ts(payload, received_at)}]


def transaction_started(cp: str, payload: dict[str, Any], tx: int, received_at: datetime) -> list[dict[str, Any]]:
    return [{"type": "TransactionStarted", "chargePointId": cp, "connectorId": integer(payload, "connectorId"),
             "transactionId": tx, "idTag": payload.get("idTag"), "meterStartWh": integer(payload, "meterStart"),
             "ts": _ts(payload, received_at)}]


def meter_samples(cp: str, payload: dict[str, Any], received_at: datetime) -> list[dict[str, Any]]:
    """One MeterSample per MeterValue (each has its own timestamp)."""
    connector = integer(payload, "connectorId")
    tx = integer(payload, "transactionId", required=False)
    readings = payload.get("meterValue") if isinstance(payload.get("meterValue"), list) else []
    return [_sample_event(cp, reading, tx, connector, received_at) for reading in readings]


def _sample_event(cp: str, reading: Any, tx: int | None, connector: int | None, received_at: datetime) -> dict[str, Any]:
    event = {"type": "MeterSample", "chargePointId": cp, "transactionId": tx or 0, "samples": samples_of(reading),
             "ts": _ts(reading if isinstance(reading, dict) else {}, received_at)}
    if connector is not None:
        event["connectorId"] = connector
    return event


def transaction_ended(cp: str, payload: dict[str, Any], received_at: datetime) -> list[dict[str, Any]]:
    """The transaction's own samples (`transactionData`) first, then its end."""
    tx = integer(payload, "transactionId")
    readings = payload.get("transactionData") if isinstance(payload.get("transactionData"), list) else []
    events = [_sample_event(cp, reading, tx, None, received_at) for reading in readings]
    end = {"type": "TransactionEnded", "chargePointId": cp, "transactionId": tx,
           "meterStopWh": integer(payload, "meterStop"), "ts": _ts(payload, received_at)}
    for field in ("reason", "idTag"):
        if payload.get(field) is not None:
            end[field] = payload[field]
    return [*events, end]


def data_transfer(cp: str, payload: dict[str, Any], received_at: datetime) -> list[dict[str, Any]]:
    """Archived by ingest as sent (a type no service applies)."""
    event = {"type": "DataTransfer", "chargePointId": cp, "vendorId": payload.get("vendorId"), "ts": stamp(received_at)}
    for field in ("messageId", "data"):
        if payload.get(field) is not None:
            event[field] = payload[field]
    return [event]


def firmware_status(cp: str, payload: dict[str, Any], received_at: datetime) -> list[dict[str, Any]]:
    return [{"type": "FirmwareStatus", "chargePointId": cp, "status": payload.get("status"), "ts": stamp(received_at)}]


def diagnostics_status(cp: str, payload: dict[str, Any], received_at: datetime) -> list[dict[str, Any]]:
    return [{"type": "DiagnosticsStatus", "chargePointId": cp, "status": payload.get("status"), "ts": stamp(received_at)}]


def connected(cp: str, remote_addr: str | None) -> dict[str, Any]:
    return _link_event(cp, "ChargerConnected", "remoteAddr", remote_addr)


def disconnected(cp: str, reason: str | None) -> dict[str, Any]:
    return _link_event(cp, "ChargerDisconnected", "reason", reason)


def _link_event(cp: str, event_type: str, field: str, value: str | None) -> dict[str, Any]:
    """A charger's WebSocket opened or closed, now; `field` only when there is something to say."""
    at = now_ms()
    event = {"type": event_type, "chargePointId": cp, "ts": stamp(at)}
    if value:
        event[field] = value
    return identified(call_key(cp, event_type, {}, at), [event])[0]
