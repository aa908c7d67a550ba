"""Ingest: the gateway's door. Charger handshake auth, event intake (published with confirms, or
spooled, before we answer 202), the raw archive, charger registration, operators and the audit
trail. Every route is listed here."""
from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import AsyncIterator
from typing import TypeVar

from aiohttp import web

from services.ingest import audit_trail, charger_registry, metrics, operator_accounts, secrets, store
from services.ingest.intake import Accepted, ReceiveClock, accept_events
from services.ingest.models import AuditQuery, AuthRequest, CreateOperator, RegisterCharger, RotateSecret, SetActive
from services.ingest.publisher import EventPublisher
from services.ingest.responses import (
    EVENTS_BODY, AuditEntry, AuthAllowed, AuthDenied, BatchAccepted, CreatedOperator, EventAccepted, Operator, RegisteredCharger,
)
from shared.app import BROKER, POOL, SETTINGS, copies_applied, entity_before, outbox_relay, unit_of_work
from shared import workers
from shared.broker import PublishFailed
from shared.config import IngestSettings
from shared.http import Problem, found, json_response, parse_body, read_json_as_sent
from shared.openapi import Body, Fragment, Operation, page_of, ref
from shared.topology import SESSIONS_REGISTRY

SCHEMA = store.SCHEMA
log = logging.getLogger(__name__)
PUBLISHER = web.AppKey("publisher", EventPublisher)
RECEIVE_CLOCK = web.AppKey("receive_clock", ReceiveClock)
VERIFIED = web.AppKey("verified_secrets", secrets.VerifiedSecrets)
SPOOL = "spool"
T = TypeVar("T")


async def authorize_charger(request: web.Request) -> web.Response:
    """The gateway asks during a charger's WebSocket handshake whether to let it in."""
    charge_point_id = request.match_info["chargePointId"]
    body = await parse_body(request, AuthRequest)
    settings = request.app[SETTINGS]
    window = settings.auth_failure_window_seconds
    async with request.app[POOL].acquire() as conn:
        known = await store.handshake_of(conn, charge_point_id)
    wait = known.throttled_for(max_failures=settings.auth_max_failures, window=window)
    if wait > 0:
        metrics.AUTH.labels("throttled").inc()
        raise Problem(429, "Too many failed attempts", "this charger failed to authenticate too often; wait and retry",
                      headers={"Retry-After": str(math.ceil(wait))})
    matches = await request.app[VERIFIED].verify(charge_point_id, body.presentedSecret, known.secret_hash)
    allowed = matches and known.is_active
    async with request.app[POOL].acquire() as conn:
        await charger_registry.record_handshake(conn, charge_point_id, allowed=allowed, window=window, had_failures=known.failures > 0)
    outbox_relay(request.app, SCHEMA).wake()
    metrics.AUTH.labels("allowed" if allowed else "denied").inc()
    if not allowed:
        log.info("handshake refused", extra={"charge_point_id": charge_point_id, "remote_addr": body.remoteAddr})
        return json_response({"allowed": False}, status=401)
    return json_response({"allowed": True, "ocppVersion": "1.6"})


async def receive_events(request: web.Request) -> web.Response:
    """One event or a batch; 202 once every one of them is durably held: confirmed by the broker,
    or, when it cannot confirm in time, committed to the spool (503 only when neither can)."""
    data, raw = await read_json_as_sent(request)
    try:
        accepted, is_batch = accept_events(data, request.app[RECEIVE_CLOCK], has_nul=b"\\u0000" in raw)
    except Problem:
        metrics.EVENTS.labels("invalid", "rejected").inc()
        raise
    unique = list({event.event_id: event for event in accepted}.values())
    by_type = Counter(event.type_label for event in unique)
    try:
        await request.app[PUBLISHER].publish(unique)
        result = "accepted"
    except PublishFailed:
        result = await _spool(request.app, unique, by_type)
    for label, count in by_type.items():
        metrics.EVENTS.labels(label, result).inc(count)
    for event in unique:
        for anomaly in event.anomalies:
            metrics.ANOMALIES.labels(event.type_label, anomaly).inc()
    if not is_batch:
        event = accepted[0]
        return json_response({"accepted": True, "type": event.type, "eventId": event.event_id}, status=202)
    return json_response(
        {"accepted": len(unique), "duplicates": len(accepted) - len(unique), "eventIds": [e.event_id for e in accepted]},
        status=202,
    )


async def _spool(app: web.Application, events: list[Accepted], by_type: Counter) -> str:
    """Hold events the broker did not confirm; the spool relay publishes them when it is back."""
    try:
        async with unit_of_work(app, SCHEMA, SPOOL) as conn:
            await store.spool_events(conn, [(e.routing_key, e.event_id, e.encoded) for e in events])
    except Exception:
        for label, count in by_type.items():
            metrics.EVENTS.labels(label, "unavailable").inc(count)
        raise Problem(503, "Service unavailable", "neither the message broker nor the database can hold the events; retry later",
                      headers={"Retry-After": "1"}) from None
    metrics.SPOOLED.inc(len(events))
    return "spooled"


async def register_charger(request: web.Request) -> web.Response:
    """201 once the charger is registered and every view of it shows it (read your writes)."""
    body = await parse_body(request, RegisterCharger)
    secret_hash = await secrets.hash_secret_async(body.secret)
    async with request.app[POOL].acquire() as conn:
        written = await charger_registry.register(conn, body.chargePointId, secret_hash, body.siteId)
    if written is None:
        raise Problem(409, "Charger exists", f"charger {body.chargePointId} is already registered")
    row, announced = written
    await copies_applied(request.app, SCHEMA, [announced], keeper=SESSIONS_REGISTRY)
    return json_response(RegisteredCharger.from_row(row), status=201)


async def rotate_secret(request: web.Request) -> web.Response:
    body = await parse_body(request, RotateSecret)
    secret_hash = await secrets.hash_secret_async(body.secret)
    async with request.app[POOL].acquire() as conn:
        row = await store.rotate_secret(conn, request.match_info["chargePointId"], secret_hash)
    return json_response(RegisteredCharger.from_row(_registered(row, request)))


async def set_active(request: web.Request) -> web.Response:
    body = await parse_body(request, SetActive)
    async with request.app[POOL].acquire() as conn:
        written = await charger_registry.set_active(conn, request.match_info["chargePointId"], body.isActive)
    row, announced = _registered(written, request)
    await copies_applied(request.app, SCHEMA, [announced], keeper=SESSIONS_REGISTRY)
    return json_response(RegisteredCharger.from_row(row))


# What a write changes, as it was (the audit trail's `before`; never a secret: the models have none).
_charger_before = entity_before("chargePointId", store.charger, RegisteredCharger)
_operator_before = entity_before("name", store.operator, Operator)


def _registered(written: T | None, request: web.Request) -> T:
    return found(written, "charger", f"no charger {request.match_info['chargePointId']} is registered")


def verified_secrets_memory(settings: IngestSettings) -> int:
    """The bytes of the secrets verified lately, which every worker of a `cpms run` shares."""
    return secrets.VerifiedSecrets.bytes_for(settings.auth_remembered_chargers)


async def publisher_ctx(app: web.Application) -> AsyncIterator[None]:
    app[RECEIVE_CLOCK] = ReceiveClock()
    app[VERIFIED] = secrets.VerifiedSecrets(*workers.shared_memory(verified_secrets_memory(app[SETTINGS])))
    publisher = app[PUBLISHER] = EventPublisher(app[BROKER], linger=app[SETTINGS].publish_linger_seconds)
    yield
    await publisher.close()


# Every route of the service: its handler, request and response models, auth and errors.
API = Fragment("ingest", (
    Operation("POST", "/v1/gateway/chargers/{chargePointId}/auth", authorize_charger, "Check a charger's secret during its handshake", "gateway",
              {200: AuthAllowed, 401: AuthDenied}, body=AuthRequest, errors=(429,)),
    Operation("POST", "/v1/gateway/events", receive_events, "One charger event or a batch; 202 once the broker confirmed them", "gateway",
              {202: (Body({"anyOf": [ref(EventAccepted), ref(BatchAccepted)]}, (EventAccepted, BatchAccepted)),)},
              body=EVENTS_BODY),
    Operation("POST", "/v1/chargers", register_charger, "Register a charger", "operator", {201: RegisteredCharger}, body=RegisterCharger, errors=(409,)),
    Operation("PUT", "/v1/chargers/{chargePointId}/secret", rotate_secret, "Rotate a charger's secret", "operator",
              {200: RegisteredCharger}, body=RotateSecret, before=_charger_before),
    Operation("PUT", "/v1/chargers/{chargePointId}/active", set_active, "Switch a charger on or off", "operator",
              {200: RegisteredCharger}, body=SetActive, before=_charger_before),
    Operation("POST", "/v1/operators", operator_accounts.create_operator, "Create a named operator token (shown this once)", "admin",
              {201: CreatedOperator}, body=CreateOperator, errors=(409,), redact=("token",)),
    Operation("GET", "/v1/operators", operator_accounts.list_operators, "The operators (never their tokens)", "admin",
              {200: page_of(Operator)}),
    Operation("DELETE", "/v1/operators/{name}", operator_accounts.revoke_operator, "Revoke an operator's token, at once everywhere",
              "admin", {204: None}, before=_operator_before),
    Operation("GET", "/v1/audit", audit_trail.list_audit, "Every accepted operator write, newest first", "finance",
              {200: page_of(AuditEntry)}, query=AuditQuery),
), "Gateway intake, charger registration, operators and the audit trail")
