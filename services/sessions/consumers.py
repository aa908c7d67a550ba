"""Queues the sessions service consumes: charger events (state, connectors, sessions), the
charger registry (ingest, billing), billing's prices and settlement statuses, and the answers to
the charging profiles it ordered for site power limits."""
from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from uuid import UUID

import asyncpg
import pydantic

from services.sessions import connections, metrics, site_load, store
from services.sessions.authorization import judge_sessions, policy_of
from services.sessions.eras import attribute
from services.sessions.facts import reduce_events
from services.sessions.finalization import refinalize
from services.sessions.progress import announce_progress
from services.sessions.roaming import REALTIME_JUDGE, Question, apply_partner_tokens
from shared.config import SessionsSettings
from shared.consumer import Message, each
from shared.domain import (
    ChargerActiveChanged,
    ConnectorStatusReported,
    ChargerHandshake,
    ChargerRegistered,
    ChargerSiteAssigned,
    CopyApplied,
    SessionPriced,
    SettlementStatusChanged,
    SiteCreated,
    SitePowerLimitChanged,
    settlement_order,
)
from shared.outbox import enqueue_domain, enqueue_domain_many
from shared.operators import copy_of_operators
from shared.service import Consumes
from shared.topology import (
    SESSIONS_BILLING,
    SESSIONS_CHARGER_EVENTS,
    SESSIONS_COMMAND_ANSWERS,
    SESSIONS_OPERATORS,
    SESSIONS_PARTNER_TOKENS,
    SESSIONS_REGISTRY,
)

log = logging.getLogger(__name__)


async def apply_charger_events(conn: asyncpg.Connection, messages: list[Message], *, settings: SessionsSettings) -> list[Question]:
    """One batch of charger events, a few set-based statements, then those sessions that started or
    stopped judged by their idTag and the touched sessions re-derived. Returns the sessions whose
    roaming partner is to be asked in real time, once this has committed."""
    started = time.perf_counter()
    batch = reduce_events([(m.message_id, m.body, m.repeat) for m in messages])
    await store.chargers.record_chargers(conn, batch)
    changed = await store.chargers.record_connector_statuses(conn, batch)
    await enqueue_domain_many(conn, store.SCHEMA, connector_statuses(changed))
    if batch.chargers:  # heard, or gone from our gateway: their connection may have turned
        await connections.announce(conn, settings.charger_offline_after_seconds, sorted(batch.chargers))
    await store.chargers.record_status_log(conn, batch)
    touched: set[UUID] = set()
    judged: set[UUID] = set()  # started or stopped: their idTag's sessions may be concurrent or not
    if batch.transactions:
        keys = sorted(batch.transactions)
        attribution = attribute(batch.transactions, await store.sessions.known_sessions(conn, keys))
        ids = await store.sessions.record_sessions(conn, attribution.sessions)
        touched.update(ids.values())
        judged.update(ids[k] for k, facts in attribution.sessions.items() if facts.starts or facts.end)
        for older, newer, since in attribution.moves:
            older_id = ids.get(older) or await store.sessions.session_id_of(conn, older)
            if older_id is not None:
                await store.sessions.move_to_newer_session(conn, older_id, ids[newer], since)
                touched.add(older_id)
                judged.add(older_id)
        _, known = await store.sessions.record_samples(conn, attribution.sessions, ids)
        await store.load.record_power(conn, attribution.sessions, ids)
        if known:
            metrics.DUPLICATES.labels("meter_sample").inc(known)
        metrics.TRANSACTION_ID_CONFLICTS.inc(attribution.conflicts)
        metrics.TRANSACTION_ID_REUSED.inc(attribution.reused)
    # A boot or a transaction's event may leave an older session unable to end on its own.
    deciding = {cp for cp, _ in batch.transactions} | {cp for cp, seen in batch.chargers.items() if seen.boot}
    if deciding:
        for closed in await store.sessions.close_by_rules(conn, sorted(deciding)):
            touched.add(closed["session_id"])
            judged.add(closed["session_id"])
            metrics.CLOSED_BY_RULE.labels(closed["rule"]).inc()
    touched.update(await store.sessions.parked_sessions(conn, batch))  # unplugged: their parking ends
    # Judged first: a partner's token judged now is in the finalization published next.
    questions = await judge_sessions(conn, sorted(judged), policy_of(settings)) if judged else []
    if touched:
        await refinalize(conn, sorted(touched))
        metrics.PROGRESS_ANNOUNCED.inc(await announce_progress(conn, sorted(touched), every_seconds=settings.session_progress_seconds))
    # Site power limits: a boot sends the fail-safe again; a start or an end moves the shares.
    boots = {cp: seen.boot[1].received_at for cp, seen in batch.chargers.items() if seen.boot}
    await store.load.record_boots(conn, boots)
    if boots or judged:
        await store.load.make_due(conn, charge_point_ids=sorted(boots), session_ids=sorted(judged))
    for kind, count in batch.applied.items():
        metrics.EVENTS.labels(kind, "applied").inc(count)
    for kind, count in batch.ignored.items():
        metrics.EVENTS.labels(kind, "ignored").inc(count)
    metrics.HANDLER_SECONDS.labels("charger_events").observe(time.perf_counter() - started)
    _observe_lag(messages)
    return questions


def connector_statuses(rows: list) -> list[ConnectorStatusReported]:
    """The connectors whose current status changed, for whoever keeps a copy (roaming)."""
    return [ConnectorStatusReported(chargePointId=r["charge_point_id"], connectorId=r["connector_id"], status=r["status"],
                                    errorCode=r["error_code"], at=r["status_at"], receiveOrder=r["receive_order"],
                                    eventId=r["event_id"]) for r in rows]


def _observe_lag(messages: list[Message]) -> None:
    """End-to-end lag: from ingest's receipt of the batch's oldest event to now (its application)."""
    received = [m.body["receivedAt"] for m in messages if isinstance(m.body.get("receivedAt"), str)]
    if received:
        try:
            oldest = datetime.fromisoformat(min(received))
        except ValueError:
            return
        metrics.EVENT_LAG.observe(max((datetime.now(UTC) - oldest).total_seconds(), 0.0))


async def apply_registry(conn: asyncpg.Connection, message: Message) -> None:
    """isActive and siteId of a charger, last writer wins by `at`; its handshakes; the sites."""
    started = time.perf_counter()
    key = message.routing_key
    if key == ChargerRegistered.routing_key:
        registered = ChargerRegistered.model_validate(message.body)
        await store.chargers.record_registration(conn, registered.chargePointId, at=registered.at, registered=True,
                                        is_active=registered.isActive, site_id=registered.siteId)
    elif key == ChargerActiveChanged.routing_key:
        changed = ChargerActiveChanged.model_validate(message.body)
        await store.chargers.record_registration(conn, changed.chargePointId, at=changed.at, is_active=changed.isActive)
    elif key == ChargerSiteAssigned.routing_key:
        assigned = ChargerSiteAssigned.model_validate(message.body)
        await store.chargers.record_registration(conn, assigned.chargePointId, at=assigned.at, site_id=assigned.siteId)
        await store.load.make_due(conn, site_ids=[assigned.siteId])
        await store.load.release(conn, charge_point_ids=[assigned.chargePointId])  # it may have left a limited site
    elif key == SiteCreated.routing_key:
        site = SiteCreated.model_validate(message.body)
        await store.chargers.record_site(conn, site.siteId, name=site.name, created_at=site.at)
    elif key == SitePowerLimitChanged.routing_key:
        limit = SitePowerLimitChanged.model_validate(message.body)
        watts = int(limit.maxPowerKw * 1000) if limit.maxPowerKw is not None else None
        await store.load.record_limit(conn, limit.siteId, watts, at=limit.at)
    elif key == ChargerHandshake.routing_key:  # nobody waits for it: no notice
        handshake = ChargerHandshake.model_validate(message.body)
        await store.chargers.record_handshake(conn, handshake.chargePointId, allowed=handshake.allowed, at=handshake.at)
        metrics.REGISTRY_UPDATES.labels(key).inc()
        return
    else:
        log.warning("unexpected registry message ignored", extra={"routing_key": key})
        return
    # The writer waits for this to answer (read your writes); same transaction as the copy.
    await enqueue_domain(conn, store.SCHEMA, CopyApplied(messageIds=[message.message_id], keeper=SESSIONS_REGISTRY.key))
    metrics.REGISTRY_UPDATES.labels(key).inc()
    metrics.HANDLER_SECONDS.labels("registry").observe(time.perf_counter() - started)


async def apply_billing(conn: asyncpg.Connection, messages: list[Message]) -> None:
    """Cost fields from `session.priced` (highest revision wins) and the settlement status (latest
    wins), reduced per session first, so a batch takes two statements whatever its order."""
    started = time.perf_counter()
    prices: dict[UUID, SessionPriced] = {}
    statuses: dict[UUID, SettlementStatusChanged] = {}
    for message in messages:
        if message.routing_key == SessionPriced.routing_key:
            priced = SessionPriced.model_validate(message.body)
            held = prices.get(priced.sessionId)
            if held is None or priced.revision > held.revision:
                prices[priced.sessionId] = priced
        elif message.routing_key.startswith("settlement."):
            try:
                status = SettlementStatusChanged.model_validate(message.body)
            except pydantic.ValidationError:
                if message.routing_key == SettlementStatusChanged.routing_key:
                    raise  # ours and broken: dead-letter it
                log.info("settlement message of another kind ignored", extra={"routing_key": message.routing_key})
                continue
            held = statuses.get(status.sessionId)
            if held is None or settlement_order(status.at, status.status) > settlement_order(held.at, held.status):
                statuses[status.sessionId] = status
        else:
            log.warning("unexpected billing message ignored", extra={"routing_key": message.routing_key})
    await enqueue_domain(conn, store.SCHEMA, CopyApplied(messageIds=[m.message_id for m in messages], keeper=SESSIONS_BILLING.key))
    for kind, received, changed in (
        ("session.priced", len(prices), await store.sessions.record_prices(conn, list(prices.values()))),
        ("settlement.status-changed", len(statuses), await store.sessions.record_settlement_statuses(conn, list(statuses.values()))),
    ):
        metrics.BILLING_UPDATES.labels(kind, "applied").inc(changed)
        metrics.BILLING_UPDATES.labels(kind, "stale").inc(received - changed)
    metrics.HANDLER_SECONDS.labels("billing").observe(time.perf_counter() - started)


CONSUMERS = (
    # A charger's identical event sent again is its latest word for the newest-wins facts.
    Consumes(SESSIONS_CHARGER_EVENTS, apply_charger_events, wakes_outbox=True, repeats=True, takes_settings=True,
             after_commit=lambda app: app[REALTIME_JUDGE].ask),
    Consumes(SESSIONS_PARTNER_TOKENS, each(apply_partner_tokens)),
    Consumes(SESSIONS_REGISTRY, each(apply_registry), wakes_outbox=True),
    Consumes(SESSIONS_BILLING, apply_billing, wakes_outbox=True),
    Consumes(SESSIONS_COMMAND_ANSWERS, site_load.apply_command_answers),
    copy_of_operators("sessions", SESSIONS_OPERATORS),
)
