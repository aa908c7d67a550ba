"""Turning a gateway request body into identified events ready to publish, losing nothing a
charger sent: only what CONTRACT section 1 lists is refused (400); everything else a charger got
wrong is kept as sent, with the anomalies found, and the time the services should use."""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from shared.events import (
    CONNECTOR_STATUSES,
    ERROR_CODES,
    EVENT_TYPES,
    ID_TAG_MAX,
    derive_event_id,
    routing_key,
    sample_number,
)
from shared.http import Problem
from shared.jsonutil import format_ts

MAX_BATCH = 1000
MAX_CHARGE_POINT_ID = 255
MAX_EVENT_ID = 200
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
EARLIEST_PLAUSIBLE = datetime(2010, 1, 1, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_PLAUSIBLE_AHEAD = timedelta(hours=24)
# Fields the gateway always sends as JSON integers, and their range.
_INTEGERS = {"connectorId": INT32_MAX, "transactionId": INT32_MAX, "meterStartWh": INT64_MAX, "meterStopWh": INT64_MAX}
_REQUIRED = {
    "ChargerBooted": ("vendor", "model"),
    "ConnectorStatusChanged": ("connectorId", "status"),
    "TransactionStarted": ("connectorId",),
    "MeterSample": ("samples",),
    "CommandAck": ("commandType", "uniqueId"),
    "FirmwareStatus": ("status",),
    "DiagnosticsStatus": ("status",),
}
_TEXT_FIELDS = ("vendor", "model", "firmwareVersion", "ocppVersion", "status", "errorCode", "idTag", "reason",
                "commandType", "uniqueId", "remoteAddr")


@dataclass(slots=True)
class Accepted:
    event_id: str
    type: str
    routing_key: str
    body: dict[str, Any]
    encoded: bytes  # the body as published
    anomalies: tuple[str, ...]

    @property
    def type_label(self) -> str:
        return self.type if self.type in EVENT_TYPES else "unknown"


class ReceiveClock:
    """The receive order of events: microseconds of receipt x 1024 + the event's index in its
    request, strictly increasing within a process. The gateway posts one event of a charger at a
    time and waits for the answer, and the charger waits for its own before it sends the next, so
    one charger's next event is received at least that round trip after the last one was given its
    order. Across the workers of one host (one clock) and across hosts (clocks kept by NTP, far
    closer than that round trip) one charger's receive orders are therefore the true order of its
    events (CONTRACT section 1), which the sessions service relies on where the charger's clock
    and the gateway's meet. Only a host clock stepped back by more than that round trip, between
    two events of one charger taken by two processes, could invert them."""

    STRIDE = 1024  # > MAX_BATCH

    def __init__(self) -> None:
        self._last = 0

    def take(self) -> tuple[datetime, int]:
        """(receipt time, the order of the request's first event)."""
        now_ns = time.time_ns()
        base = max(now_ns // 1000 * self.STRIDE, self._last + self.STRIDE)
        self._last = base
        return _EPOCH + timedelta(microseconds=base // self.STRIDE), base


def read_ts(value: Any, received_at: datetime) -> tuple[datetime, list[str]]:
    """The effective time of an event and the anomalies of its ts (CONTRACT "Charger clocks")."""
    if value is None:
        return received_at, []
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return received_at, ["unreadable_ts"]
    anomalies = []
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
        anomalies.append("ts_without_offset")
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        return received_at, [*anomalies, "implausible_ts"]
    if parsed < EARLIEST_PLAUSIBLE or parsed > received_at + LATEST_PLAUSIBLE_AHEAD:
        return received_at, [*anomalies, "implausible_ts"]
    return parsed, anomalies


def refusals(raw: Any) -> list[tuple[list, str]]:
    """Why an event cannot be taken at all: (loc, msg) pairs, empty when it can."""
    if not isinstance(raw, dict):
        return [([], "an event must be a JSON object")]
    errors = []
    kind = raw.get("type")
    if not isinstance(kind, str) or not kind:
        errors.append((["type"], "type is required and must be a string"))
    cp = raw.get("chargePointId")
    if not isinstance(cp, str) or not 1 <= len(cp) <= MAX_CHARGE_POINT_ID or "\x00" in cp:
        errors.append((["chargePointId"], f"chargePointId is required: a string of 1 to {MAX_CHARGE_POINT_ID} characters"))
    if kind in ("TransactionStarted", "TransactionEnded") and raw.get("transactionId") is None:
        errors.append((["transactionId"], f"transactionId is required: an integer 0 to {INT32_MAX}"))
    for name, maximum in _INTEGERS.items():
        value = raw.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum):
            errors.append(([name], f"{name} must be an integer 0 to {maximum}"))
    if raw.get("ts") is not None and not isinstance(raw["ts"], str):
        errors.append((["ts"], "ts must be an RFC 3339 string such as 2026-11-25T10:00:00Z"))
    if raw.get("samples") is not None and not isinstance(raw["samples"], list):
        errors.append((["samples"], "samples must be a list"))
    event_id = raw.get("eventId")
    if event_id is not None and (not isinstance(event_id, str) or not 1 <= len(event_id) <= MAX_EVENT_ID or "\x00" in event_id):
        errors.append((["eventId"], f"eventId must be a string of 1 to {MAX_EVENT_ID} characters"))
    return errors


def anomalies_of(raw: dict[str, Any]) -> list[str]:
    """What a charger got wrong in an event that is taken anyway (besides its ts)."""
    kind = raw["type"]
    found = [f"missing_{name}" for name in _REQUIRED.get(kind, ()) if raw.get(name) in (None, "", [])]
    if any(raw.get(name) is not None and not isinstance(raw[name], str) for name in _TEXT_FIELDS):
        found.append("invalid_field")
    if kind == "ConnectorStatusChanged":
        if isinstance(raw.get("status"), str) and raw["status"] not in CONNECTOR_STATUSES:
            found.append("unknown_status")
        if isinstance(raw.get("errorCode"), str) and raw["errorCode"] not in ERROR_CODES and raw["errorCode"] != "":
            found.append("unknown_error_code")
    if isinstance(raw.get("idTag"), str) and len(raw["idTag"]) > ID_TAG_MAX:
        found.append("id_tag_too_long")
    if kind == "MeterSample" and isinstance(raw.get("samples"), list):
        samples = raw["samples"]
        if any(not isinstance(s, dict) or "value" not in s for s in samples):
            found.append("invalid_sample")
        if any(isinstance(s, dict) and "value" in s and sample_number(s["value"]) is None for s in samples):
            found.append("non_numeric_sample")
    return found


def _without_nul(value: Any) -> tuple[Any, bool]:
    """Postgres text and jsonb cannot hold NUL: a charger's NUL becomes U+FFFD (and is flagged)."""
    if isinstance(value, str):
        return (value.replace("\x00", "\ufffd"), True) if "\x00" in value else (value, False)
    if isinstance(value, dict):
        changed, cleaned = False, {}
        for key, item in value.items():
            new_key, key_changed = _without_nul(key)
            new_item, item_changed = _without_nul(item)
            cleaned[new_key] = new_item
            changed = changed or key_changed or item_changed
        return (cleaned, True) if changed else (value, False)
    if isinstance(value, list):
        items = [_without_nul(item) for item in value]
        return ([item for item, _ in items], True) if any(c for _, c in items) else (value, False)
    return value, False


def _identify(raw: dict[str, Any], received_at: datetime, received: str, order: int, has_nul: bool) -> Accepted:
    event_id = raw.get("eventId") or derive_event_id(raw)  # hashed as sent, NULs included
    body, _ = _without_nul(raw) if has_nul else (raw, False)
    effective, anomalies = read_ts(body.get("ts"), received_at)
    anomalies += anomalies_of(body)
    if has_nul and body is not raw:
        anomalies.append("nul_character")
    # The fields ingest adds are its own: a charger's value of one of them gives way.
    body = {**body, "eventId": event_id, "receivedAt": received, "receiveOrder": order,
            "effectiveTs": format_ts(effective), "anomalies": anomalies}
    if not anomalies:
        del body["anomalies"]
    kind = body["type"]
    return Accepted(event_id, kind, routing_key(kind), body, orjson.dumps(body), tuple(anomalies))


def accept_events(data: Any, clock: ReceiveClock, *, has_nul: bool = True) -> tuple[list[Accepted], bool]:
    """Take one event or a batch; returns the events and whether it was a batch. An event that
    must be refused refuses the whole request, with one error entry per problem. `has_nul=False`
    (the body holds no NUL escape) skips the search for NULs."""
    is_batch = isinstance(data, list)
    raws = data if is_batch else [data]
    if is_batch and not 1 <= len(raws) <= MAX_BATCH:
        raise Problem(400, "Invalid batch", f"a batch holds 1 to {MAX_BATCH} events, this one {len(raws)}",
                      errors=[{"loc": [], "msg": f"expected 1 to {MAX_BATCH} events"}])
    received_at, base = clock.take()
    received = format_ts(received_at)
    accepted, errors = [], []
    for index, raw in enumerate(raws):
        prefix = [index] if is_batch else []
        refused = refusals(raw)
        if refused:
            errors.extend({"loc": [*prefix, *loc], "msg": msg} for loc, msg in refused)
        elif not errors:
            accepted.append(_identify(raw, received_at, received, base + index, has_nul))
    if errors:
        raise Problem(400, "Invalid event", "one or more events cannot be taken; nothing was accepted", errors=errors)
    return accepted, is_batch
