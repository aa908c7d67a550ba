"""Which session a transaction's event belongs to, when its (charger, transactionId) is used again.

The reference gateway makes transaction ids from its clock (`unix seconds mod 10^8`): an id comes
back after about three years, and two connectors of one charger that start in the same second get
the same id. CONTRACT section 2: a TransactionStarted more than 24 h from every start of that id
opens a new session (a new `era`); one within 24 h on another connector is a conflict on the
session it joins. Any other event belongs to the newest session that started no later than 24 h
after it (a charger's clock may put a sample slightly before its start), else to the oldest."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.sessions.facts import EnergySample, Order, PowerReading, Transaction, TransactionKey
from shared.events import TransactionEnded, TransactionStarted

REUSE_AFTER = timedelta(hours=24)
SessionKey = tuple[str, int, int]  # (chargePointId, transactionId, era)


@dataclass
class Known:
    """A session of a transaction id as the store holds it."""

    era: int
    started_at: datetime | None
    first_seen_at: datetime
    connector_id: int | None


@dataclass
class SessionFacts:
    """What a batch adds to one session: its starts (the earliest is the start), end and samples."""

    first_seen_at: datetime
    connector_hint: int | None = None
    starts: list[tuple[Order, TransactionStarted]] = field(default_factory=list)
    end: tuple[Order, TransactionEnded] | None = None
    samples: list[EnergySample] = field(default_factory=list)
    power: list[PowerReading] = field(default_factory=list)
    last: tuple[datetime, int] | None = None  # its newest event by (ts, receive order)
    # By receive order and our clock, whatever the charger's clock says: a boot received after its
    # first event closes it (ChargerRebooted); its last receipt tells whether it went silent (Stale).
    first_received: int | None = None
    last_received_at: datetime | None = None

    def saw(self, ts: datetime, receive_order: int, received_at: datetime) -> None:
        if self.last is None or (ts, receive_order) > self.last:
            self.last = (ts, receive_order)
        self.received(receive_order, received_at)

    def received(self, receive_order: int, received_at: datetime) -> None:
        self.first_received = receive_order if self.first_received is None else min(self.first_received, receive_order)
        self.last_received_at = received_at if self.last_received_at is None else max(self.last_received_at, received_at)

    @property
    def start(self) -> tuple[Order, TransactionStarted] | None:
        return min(self.starts, key=lambda s: s[0]) if self.starts else None


@dataclass
class _Era:
    era: int
    start: datetime | None
    anchor: datetime
    connector: int | None


@dataclass
class Attribution:
    sessions: dict[SessionKey, SessionFacts] = field(default_factory=dict)
    # A new era takes over what an older one held from `since` on: (older, newer, since).
    moves: list[tuple[SessionKey, SessionKey, datetime]] = field(default_factory=list)
    conflicts: int = 0  # starts on another connector than their session's
    reused: int = 0  # new sessions of a transaction id already used


def attribute(transactions: dict[TransactionKey, Transaction], known: dict[TransactionKey, list[Known]]) -> Attribution:
    result = Attribution()
    for key in sorted(transactions):
        tx = transactions[key]
        eras = [_Era(k.era, k.started_at, k.started_at or k.first_seen_at, k.connector_id) for k in known.get(key, [])]
        for order, start in sorted(tx.starts, key=lambda s: s[0]):
            era = _era_of_start(eras, order[0], result, key)
            if era.connector is None:
                era.connector = start.connectorId
            elif start.connectorId is not None and start.connectorId != era.connector:
                result.conflicts += 1
            facts = _facts(result, key, era, order[0])
            facts.starts.append((order, start))
            facts.saw(order[0], order[1], start.received_at)
        for end in tx.ends:
            end_ts = end[0][0]
            facts = _facts(result, key, _era_of(eras, end_ts), end_ts)
            facts.end = end if facts.end is None or end[0] < facts.end[0] else facts.end
            facts.saw(end_ts, end[0][1], end[1].received_at)
        for sample in tx.samples:
            facts = _facts(result, key, _era_of(eras, sample.ts), sample.ts)
            facts.samples.append(sample)
            facts.saw(sample.ts, sample.receive_order, sample.received_at)
            facts.connector_hint = tx.connector_hint if facts.connector_hint is None else facts.connector_hint
        for reading in tx.power:
            facts = _facts(result, key, _era_of(eras, reading.ts), reading.ts)
            facts.power.append(reading)
            facts.connector_hint = tx.connector_hint if facts.connector_hint is None else facts.connector_hint
        for ts, receive_order, received_at in tx.resent:
            _facts(result, key, _era_of(eras, ts), ts).received(receive_order, received_at)
        if not tx.starts and not tx.ends and not tx.samples and not tx.power and not tx.resent:  # only a connector hint: the newest session
            _facts(result, key, _era_of(eras, tx.first_seen_at), tx.first_seen_at).connector_hint = tx.connector_hint
    return result


def _facts(result: Attribution, key: TransactionKey, era: _Era, ts: datetime) -> SessionFacts:
    session_key = (*key, era.era)
    facts = result.sessions.get(session_key)
    if facts is None:
        facts = result.sessions[session_key] = SessionFacts(first_seen_at=ts)
    facts.first_seen_at = min(facts.first_seen_at, ts)
    return facts


def _era_of_start(eras: list[_Era], ts: datetime, result: Attribution, key: TransactionKey) -> _Era:
    """The session a start joins: the one whose start is nearest within 24 h, or one that has no
    start yet and was first seen at most 24 h before it; else a new one."""
    near = [e for e in eras if e.start is not None and abs(e.start - ts) <= REUSE_AFTER]
    if near:
        return min(near, key=lambda e: abs(e.start - ts))
    waiting = [e for e in eras if e.start is None and e.anchor >= ts - REUSE_AFTER]
    if waiting:
        era = min(waiting, key=lambda e: e.era)
        era.start = ts
        return era
    era = _Era(max((e.era for e in eras), default=-1) + 1, ts, ts, None)
    older = [e for e in eras if e.anchor < ts]
    if older:
        result.reused += 1
        previous = max(older, key=lambda e: e.anchor)
        result.moves.append(((*key, previous.era), (*key, era.era), ts - REUSE_AFTER))
    eras.append(era)
    return era


def _era_of(eras: list[_Era], ts: datetime) -> _Era:
    """The session an end or a sample belongs to (a first one when the id is new)."""
    if not eras:
        eras.append(_Era(0, None, ts, None))
        return eras[0]
    started_before = [e for e in eras if e.anchor <= ts + REUSE_AFTER]
    if started_before:
        return max(started_before, key=lambda e: e.anchor)
    return min(eras, key=lambda e: e.anchor)
