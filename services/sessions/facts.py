"""Turning a batch of charger events into the facts the store applies, reduced per charger,
connector and transaction so each table takes one set-based statement per batch.

One charger's events are ordered by (effective ts, receive order, eventId): CONTRACT section 1's
order, with the eventId to make it total. Where events of the charger's clock meet those of the
gateway's (a boot, a heartbeat: "Two clocks"), by receive order alone. Every reduction picks by
that order or by set union, never by arrival, so the facts a batch leaves behind do not depend on
the order its events came in."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from shared.events import (
    CONNECTOR_STATUSES,
    ENERGY_INTERVAL,
    ENERGY_REGISTER,
    ChargerBooted,
    ChargerConnected,
    ChargerDisconnected,
    ChargerHeartbeat,
    ConnectorStatusChanged,
    DiagnosticsStatus,
    FirmwareStatus,
    MeterSample,
    TransactionEnded,
    TransactionStarted,
    parse_event,
    sample_energy_wh,
    sample_power_w,
    type_label,
)

TransactionKey = tuple[str, int]  # (chargePointId, transactionId)
Order = tuple[datetime, int, str]  # (effective ts, receive order, eventId)
# CommandAck belongs to the commands service; unknown types change no state anywhere.
_APPLIED = (ChargerBooted, ChargerHeartbeat, ConnectorStatusChanged, TransactionStarted, MeterSample, TransactionEnded,
            ChargerConnected, ChargerDisconnected, FirmwareStatus, DiagnosticsStatus)
_MEASURANDS = {ENERGY_REGISTER: "Register", ENERGY_INTERVAL: "Interval"}


@dataclass
class ChargerSeen:
    last_seen: tuple[int, datetime] | None = None  # (receive order, ts) of the last event received, of either clock
    last_received_at: datetime | None = None  # by our clock: whether the charger is online
    disconnected_at: datetime | None = None  # by our clock: the newest ChargerDisconnected
    connected_at: datetime | None = None  # by our clock: the newest ChargerConnected
    last_heartbeat_at: datetime | None = None
    boot: tuple[Order, ChargerBooted] | None = None
    last_boot_order: int | None = None  # the receive order of the last boot received: it closes what came before
    clock_skew: tuple[int, float] | None = None  # (receive order, seconds) of the newest plausible ts


@dataclass(frozen=True)
class ConnectorStatus:
    order: Order
    status: str
    error_code: str


@dataclass(frozen=True)
class EnergySample:
    event_id: str
    position: int
    ts: datetime
    receive_order: int
    measurand: str  # "Register" | "Interval"
    value_wh: Decimal
    received_at: datetime


@dataclass(frozen=True)
class PowerReading:
    """A `Power.Active.Import` reading of a transaction, in W: what a site's load sharing measures."""

    event_id: str
    position: int
    ts: datetime
    received_at: datetime
    watts: Decimal


@dataclass
class Transaction:
    """What a batch says about one (charger, transactionId); `services.sessions.eras` splits it
    into sessions when the id was used before."""

    first_seen_at: datetime
    connector_hint: int | None = None
    starts: list[tuple[Order, TransactionStarted]] = field(default_factory=list)
    ends: list[tuple[Order, TransactionEnded]] = field(default_factory=list)
    samples: list[EnergySample] = field(default_factory=list)
    power: list[PowerReading] = field(default_factory=list)
    # A start or an end received again (the inbox holds its eventId): (ts, receive order, receipt
    # time). The copy processed first is the fact; when each copy was received still counts.
    resent: list[tuple[datetime, int, datetime]] = field(default_factory=list)


@dataclass
class Batch:
    chargers: dict[str, ChargerSeen] = field(default_factory=dict)
    connectors: dict[tuple[str, int], ConnectorStatus] = field(default_factory=dict)
    status_log: list[tuple[str, int, ConnectorStatus]] = field(default_factory=list)  # every status, for charging periods
    transactions: dict[TransactionKey, Transaction] = field(default_factory=dict)
    applied: dict[str, int] = field(default_factory=dict)  # event type -> count, for metrics
    ignored: dict[str, int] = field(default_factory=dict)


def _min(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else min(a, b)


def _max(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else max(a, b)


def energy_samples(event: MeterSample, event_id: str) -> list[EnergySample]:
    """The energy readings of a MeterSample in Wh; what is no total energy reading in a number is left out."""
    found = []
    for position, sample in enumerate(event.samples):
        reading = sample_energy_wh(sample)
        if reading is not None:
            measurand, value = reading
            found.append(EnergySample(event_id, position, event.at, event.receiveOrder, _MEASURANDS[measurand], value,
                                      event.received_at))
    return found


def power_readings(event: MeterSample, event_id: str) -> list[PowerReading]:
    found = []
    for position, sample in enumerate(event.samples):
        watts = sample_power_w(sample)
        if watts is not None:
            found.append(PowerReading(event_id, position, event.at, event.received_at, watts))
    return found


def reduce_events(messages: list[tuple[str, dict[str, Any], bool]]) -> Batch:
    """(message id, event body, repeat) triples -> the batch's facts. A repeat (an eventId the
    inbox already holds) only counts for the newest-wins facts: its receive order may be newer.
    Raises pydantic.ValidationError for an event ingest would have refused (the consumer dead-letters it)."""
    batch = Batch()
    for message_id, body, repeat in messages:
        event = parse_event(body)
        event_id = event.eventId or message_id
        ts = event.at
        order = (ts, event.receiveOrder, event_id)
        if not isinstance(event, _APPLIED):
            if not repeat:
                label = type_label(event.type)
                batch.ignored[label] = batch.ignored.get(label, 0) + 1
            continue
        cp = event.chargePointId
        seen = batch.chargers.get(cp)
        if seen is None:
            seen = batch.chargers[cp] = ChargerSeen()
        if not repeat:
            batch.applied[event.type] = batch.applied.get(event.type, 0) + 1
        if isinstance(event, ChargerDisconnected):
            # offline from then until the charger is heard again (the CPMS's own gateway: CONTRACT 11)
            seen.disconnected_at = _max(seen.disconnected_at, event.received_at)
            continue
        seen.last_seen = _max(seen.last_seen, (event.receiveOrder, ts))
        seen.last_received_at = _max(seen.last_received_at, event.received_at)
        skew = event.clock_skew_seconds
        if skew is not None and (seen.clock_skew is None or event.receiveOrder > seen.clock_skew[0]):
            seen.clock_skew = (event.receiveOrder, skew)

        if isinstance(event, ChargerHeartbeat):
            seen.last_heartbeat_at = max(seen.last_heartbeat_at or ts, ts)
        elif isinstance(event, ChargerBooted):
            if seen.boot is None or order > seen.boot[0]:
                seen.boot = (order, event)
            seen.last_boot_order = max(seen.last_boot_order or 0, event.receiveOrder)
        elif isinstance(event, ConnectorStatusChanged):
            if event.connectorId is None or event.status not in CONNECTOR_STATUSES:
                continue  # flagged by ingest; nothing here can be applied to a connector
            key = (cp, event.connectorId)
            status = ConnectorStatus(order, event.status, event.errorCode or "NoError")
            batch.status_log.append((cp, event.connectorId, status))
            current = batch.connectors.get(key)
            if current is None or order > current.order:
                batch.connectors[key] = status
        elif isinstance(event, MeterSample) and not event.transactionId:
            pass  # not a transaction's sample: it only tells us the charger is alive
        elif isinstance(event, ChargerConnected):
            seen.connected_at = _max(seen.connected_at, event.received_at)
        elif isinstance(event, FirmwareStatus | DiagnosticsStatus):
            pass  # the charger is alive: seen above
        elif repeat:
            tx = _transaction(batch, (cp, event.transactionId), ts)
            if isinstance(event, MeterSample):  # sent again: its readings are the charger's latest word
                tx.samples.extend(energy_samples(event, event_id))
            else:  # the copy received first may come second: its receipt still counts (a boot between the copies)
                tx.resent.append((ts, event.receiveOrder, event.received_at))
        else:
            tx = _transaction(batch, (cp, event.transactionId), ts)
            if isinstance(event, TransactionStarted):
                tx.starts.append((order, event))
            elif isinstance(event, TransactionEnded):
                tx.ends.append((order, event))
            else:
                tx.connector_hint = _min(tx.connector_hint, event.connectorId)
                tx.samples.extend(energy_samples(event, event_id))
                tx.power.extend(power_readings(event, event_id))
    return batch


def _transaction(batch: Batch, key: TransactionKey, ts: datetime) -> Transaction:
    tx = batch.transactions.get(key)
    if tx is None:
        tx = batch.transactions[key] = Transaction(first_seen_at=ts)
    tx.first_seen_at = min(tx.first_seen_at, ts)
    return tx
