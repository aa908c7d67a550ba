"""Turning a batch of charger events into the facts the store applies, reduced per charger,
connector and transaction so each table takes one set-based statement per batch.

Every reduction picks by a total order on (ts, eventId) or by set union, never by arrival, so
the facts a batch leaves behind do not depend on the order its events came in."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from shared.events import (
    ENERGY_INTERVAL, ENERGY_REGISTER, ChargerBooted, ChargerEvent, ChargerHeartbeat, ConnectorStatusChanged,
    EVENT_TYPES, MeterSample, TransactionEnded, TransactionStarted, parse_event,
)

TransactionKey = tuple[str, int]  # (chargePointId, transactionId)
# CommandAck belongs to the commands service; unknown types change no state anywhere.
_APPLIED = (ChargerBooted, ChargerHeartbeat, ConnectorStatusChanged, TransactionStarted, MeterSample, TransactionEnded)
_MEASURANDS = {ENERGY_REGISTER: "Register", ENERGY_INTERVAL: "Interval"}


@dataclass
class ChargerSeen:
    last_seen_at: datetime
    last_heartbeat_at: datetime | None = None
    boot: tuple[datetime, str, ChargerBooted] | None = None


@dataclass(frozen=True)
class ConnectorStatus:
    ts: datetime
    event_id: str
    status: str
    error_code: str


@dataclass(frozen=True)
class EnergySample:
    event_id: str
    position: int
    ts: datetime
    measurand: str  # "Register" | "Interval"
    value_wh: Decimal


@dataclass
class Transaction:
    first_seen_at: datetime
    connector_hint: int | None = None
    start: tuple[datetime, str, TransactionStarted] | None = None
    end: tuple[datetime, str, TransactionEnded] | None = None
    samples: list[EnergySample] = field(default_factory=list)


@dataclass
class Batch:
    chargers: dict[str, ChargerSeen] = field(default_factory=dict)
    connectors: dict[tuple[str, int], ConnectorStatus] = field(default_factory=dict)
    transactions: dict[TransactionKey, Transaction] = field(default_factory=dict)
    applied: dict[str, int] = field(default_factory=dict)  # event type -> count, for metrics
    ignored: dict[str, int] = field(default_factory=dict)


def _earliest(current: tuple | None, candidate: tuple) -> tuple:
    return candidate if current is None or candidate[:2] < current[:2] else current


def _min(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else min(a, b)


def event_time(event: ChargerEvent, body: dict[str, Any]) -> datetime:
    """The charger's ts; ingest always sets it, a hand-published event may not."""
    if event.ts is not None:
        return event.ts
    received = body.get("receivedAt")
    return datetime.fromisoformat(received).astimezone(UTC) if received else datetime.now(UTC)


def energy_samples(event: MeterSample, event_id: str, ts: datetime) -> list[EnergySample]:
    """The energy readings of a MeterSample in Wh. Per-phase readings are left out: the ladder
    works on the charger's totals, and a phase value is only a part of one."""
    found = []
    for position, sample in enumerate(event.samples):
        measurand = _MEASURANDS.get(sample.measurand)
        value = sample.energy_wh()
        if measurand is None or value is None or sample.phase:
            continue
        found.append(EnergySample(event_id, position, ts, measurand, value))
    return found


def reduce_events(bodies: list[tuple[str, dict[str, Any]]]) -> Batch:
    """(message id, event body) pairs -> the batch's facts. Raises pydantic.ValidationError for an
    event that is not valid (the consumer dead-letters it)."""
    batch = Batch()
    for message_id, body in bodies:
        event = parse_event(body)
        event_id = event.eventId or message_id
        ts = event_time(event, body)
        if not isinstance(event, _APPLIED):
            label = event.type if event.type in EVENT_TYPES else "unknown"  # unknown types are unbounded
            batch.ignored[label] = batch.ignored.get(label, 0) + 1
            continue
        cp = event.chargePointId
        seen = batch.chargers.get(cp)
        if seen is None:
            seen = batch.chargers[cp] = ChargerSeen(last_seen_at=ts)
        seen.last_seen_at = max(seen.last_seen_at, ts)
        batch.applied[event.type] = batch.applied.get(event.type, 0) + 1

        if isinstance(event, ChargerHeartbeat):
            seen.last_heartbeat_at = max(seen.last_heartbeat_at or ts, ts)
        elif isinstance(event, ChargerBooted):
            if seen.boot is None or (ts, event_id) > seen.boot[:2]:
                seen.boot = (ts, event_id, event)
        elif isinstance(event, ConnectorStatusChanged):
            key = (cp, event.connectorId)
            current = batch.connectors.get(key)
            if current is None or (ts, event_id) > (current.ts, current.event_id):
                batch.connectors[key] = ConnectorStatus(ts, event_id, event.status, event.errorCode)
        elif isinstance(event, MeterSample) and not event.transactionId:
            pass  # not a transaction's sample: it only tells us the charger is alive
        else:
            tx = _transaction(batch, (cp, event.transactionId), ts)
            if isinstance(event, TransactionStarted):
                tx.start = _earliest(tx.start, (ts, event_id, event))
            elif isinstance(event, TransactionEnded):
                tx.end = _earliest(tx.end, (ts, event_id, event))
            else:
                tx.connector_hint = _min(tx.connector_hint, event.connectorId)
                tx.samples.extend(energy_samples(event, event_id, ts))
    return batch


def _transaction(batch: Batch, key: TransactionKey, ts: datetime) -> Transaction:
    tx = batch.transactions.get(key)
    if tx is None:
        tx = batch.transactions[key] = Transaction(first_seen_at=ts)
    tx.first_seen_at = min(tx.first_seen_at, ts)
    return tx
