"""The OCPP 1.6J gateway (CONTRACT section 11): chargers' WebSockets at /ocpp16/{id} and /ocpp/{id},
commands at POST /v1/gateway/commands, and the operational routes. Every route is listed here.

It keeps no state of its own: a charger is let in by ingest's auth route, its calls become
ingest's events (services/gateway/cpms.py), and which process holds which charger lives in
RabbitMQ's bindings (services/gateway/switchboard.py)."""
from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.gateway import call_events, metrics
from services.gateway.charge_point import ChargerConnection, CommandRefused, frames
from services.gateway.cpms import CpmsClient, IngestUnavailable
from services.gateway.switchboard import Switchboard, not_connected
from shared.app import livez, metrics_endpoint
from shared.config import GatewaySettings
from shared.events import ChargePointId
from shared.http import Problem, json_response, metrics_middleware, parse_body, problem_middleware
from shared.ocpp_commands import CSMS_ACTIONS, payload_problems
from shared.startup import wait_for

log = logging.getLogger(__name__)
SETTINGS = web.AppKey("gateway_settings", GatewaySettings)
CPMS = web.AppKey("cpms", CpmsClient)
SWITCHBOARD = web.AppKey("switchboard", Switchboard)
SUBPROTOCOL = "ocpp1.6"
SOCKET_PATHS = ("/ocpp16/{chargePointId}", "/ocpp/{chargePointId}")
GOING_AWAY = 1001


class GatewayCommand(BaseModel):
    """What the commands service posts (CONTRACT section 5, delivery)."""

    model_config = ConfigDict(extra="ignore")
    type: str
    chargePointId: ChargePointId
    idempotencyKey: Annotated[str, StringConstraints(max_length=200)] | None = None
    payload: dict[str, Any] = Field(default_factory=dict)


# --- the chargers' side ----------------------------------------------------------------------

async def charger_socket(request: web.Request) -> web.StreamResponse:
    """The handshake (subprotocol, secret checked by ingest), then the charger's calls until it leaves."""
    cp = request.match_info["chargePointId"]
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    if offered and SUBPROTOCOL not in offered:
        metrics.HANDSHAKES.labels("wrong_subprotocol").inc()
        raise Problem(400, "Unsupported subprotocol", f"this gateway speaks {SUBPROTOCOL}; offered: {', '.join(offered)[:200]}")
    secret = _presented_secret(request, cp)
    if secret is None:
        metrics.HANDSHAKES.labels("refused").inc()
        raise Problem(401, "Unauthorized", "present the charger's secret as HTTP Basic password (user = charger id) or ?secret=",
                      headers={"WWW-Authenticate": 'Basic realm="ocpp"'})
    remote_addr = _remote_addr(request)
    try:
        verdict = await request.app[CPMS].check_handshake(cp, secret, remote_addr)
    except (IngestUnavailable, aiohttp.ClientError, TimeoutError):
        metrics.HANDSHAKES.labels("unavailable").inc()
        raise Problem(503, "Service unavailable", "the central system cannot check the charger now; retry later",
                      headers={"Retry-After": "5"}) from None
    if not verdict.allowed:
        metrics.HANDSHAKES.labels("throttled" if verdict.status == 429 else "refused").inc()
        headers = {"Retry-After": verdict.retry_after} if verdict.retry_after else {}
        raise Problem(verdict.status, "Too many failed attempts" if verdict.status == 429 else "Unauthorized",
                      "the charger is not let in", headers=headers)
    settings = request.app[SETTINGS]
    # permessage-deflate declined (RFC 7692 lets a server): OCPP frames are a few hundred bytes,
    # which deflate barely shrinks, while each frame would cost a compression and each
    # connection a compressor of its own
    ws = web.WebSocketResponse(protocols=(SUBPROTOCOL,), heartbeat=settings.ping_seconds or None,
                               max_msg_size=settings.max_body_bytes, compress=False)
    connection = ChargerConnection(
        cp, ws, cpms=request.app[CPMS], heartbeat_seconds=settings.heartbeat_seconds,
        call_deadline=settings.call_deadline_seconds, command_timeout=settings.command_timeout_seconds,
        accepted_vendors=settings.accepted_vendors, remote_addr=remote_addr,
    )
    # Held (and bound on the broker) before the charger hears it is connected: a command posted
    # to any gateway process the moment the charger is in must find it.
    await request.app[SWITCHBOARD].hold(connection)
    try:
        await ws.prepare(request)
    except BaseException:
        await asyncio.shield(request.app[SWITCHBOARD].release(connection))
        raise
    metrics.HANDSHAKES.labels("accepted").inc()
    await _serve(request.app, connection)
    return ws


async def _serve(app: web.Application, connection: ChargerConnection) -> None:
    metrics.CONNECTED.inc()
    await _announce(app[CPMS], call_events.connected(connection.id, connection.remote_addr), app[SETTINGS])
    try:
        await connection.serve()
    finally:
        metrics.CONNECTED.dec()
        # shielded: a server may cancel the handler of a connection that is gone
        await asyncio.shield(_leave(app, connection))


async def _leave(app: web.Application, connection: ChargerConnection) -> None:
    try:
        if await app[SWITCHBOARD].release(connection):  # a replaced one's charger is still connected, through the newer one
            reason = connection.close_reason or _close_reason(connection.ws.close_code)
            await _announce(app[CPMS], call_events.disconnected(connection.id, reason), app[SETTINGS])
    finally:
        connection.ended.set()


async def _announce(cpms: CpmsClient, event: dict[str, Any], settings: GatewaySettings) -> None:
    """ChargerConnected / ChargerDisconnected: `online` is exact with them; without them (ingest
    away too long) the CPMS falls back to the time since the charger was last heard."""
    try:
        await cpms.deliver([event], deadline=time.monotonic() + settings.call_deadline_seconds)
    except Exception as exc:
        log.warning("connection event not delivered", extra={"charge_point_id": event["chargePointId"],
                                                             "type": event["type"], "error": repr(exc)})


def _close_reason(code: int | None) -> str:
    return {1000: "Closed", 1001: "GoingAway", 1006: "ConnectionLost"}.get(code or 1006, f"Closed{code}")


def _presented_secret(request: web.Request, cp: str) -> str | None:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(credentials.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return password if hmac.compare_digest(user.encode(), cp.encode()) else None
    return request.query.get("secret") or None


def _remote_addr(request: web.Request) -> str | None:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else request.remote


# --- the CPMS's side: commands to chargers -----------------------------------------------------

async def send_command(request: web.Request) -> web.Response:
    """Deliver one command to the charger wherever it is connected; 200 with its CallResult, 422
    with its CallError, 502 when it is not connected or does not answer in time."""
    _require_gateway_key(request)
    command = await parse_body(request, GatewayCommand)
    if command.type not in CSMS_ACTIONS:
        metrics.COMMANDS.labels("unknown", "invalid").inc()
        raise Problem(400, "Invalid command", f"{command.type!r} is not an OCPP 1.6 action a central system sends",
                      errors=[{"loc": ["type"], "msg": f"must be one of {', '.join(CSMS_ACTIONS)}"}])
    problems = payload_problems(command.type, command.payload)
    if problems:
        metrics.COMMANDS.labels(command.type, "invalid").inc()
        raise Problem(400, "Invalid command", "the payload breaks the OCPP 1.6 schema of " + command.type,
                      errors=[{"loc": ["payload", *p["loc"]], "msg": p["msg"]} for p in problems])
    status, body = await request.app[SWITCHBOARD].deliver(command.chargePointId, command.type, command.payload)
    metrics.COMMANDS.labels(command.type, {200: "accepted", 422: "refused"}.get(status, "unreachable")).inc()
    if status == 200:
        return json_response(body)
    raise Problem(status, body.get("title", "Command failed"), body.get("detail", ""),
                  extra={k: v for k, v in body.items() if k in ("errorCode", "errorDescription")})


async def deliver_here(app: web.Application, cp: str, command_type: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A command to a charger this process holds: (HTTP status, body)."""
    connection = app[SWITCHBOARD].local.get(cp)
    if connection is None:
        return not_connected(cp)
    try:
        unique_id, response = await connection.send_command(command_type, payload)
    except CommandRefused as refused:
        return 422, {"title": "Refused by the charger", "detail": f"the charger answered {refused.error_code}",
                     "errorCode": refused.error_code, "errorDescription": refused.description}
    except TimeoutError:
        return 502, {"title": "No answer", "detail": f"charger {cp} did not answer in time"}
    except (ConnectionError, RuntimeError):  # the socket closed under the command
        return not_connected(cp)
    return 200, {"commandId": unique_id, "response": response}


def _require_gateway_key(request: web.Request) -> None:
    key = request.app[SETTINGS].gateway_api_key
    if key is None:
        return
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), key.get_secret_value().encode()):
        raise Problem(401, "Unauthorized", "a valid bearer key is required", headers={"WWW-Authenticate": "Bearer"})


# --- operations --------------------------------------------------------------------------------

async def readyz(request: web.Request) -> web.Response:
    """200 when RabbitMQ (commands across processes) and ingest (every call) answer; else 503
    naming which does not."""
    checks = {"broker": request.app[SWITCHBOARD].is_connected, "ingest": await request.app[CPMS].is_reachable()}
    failing = [name for name, ok in checks.items() if not ok]
    body: dict[str, Any] = {"status": "ok" if not failing else "unavailable",
                            "checks": {k: "ok" if v else "failing" for k, v in checks.items()},
                            "connectedChargers": len(request.app[SWITCHBOARD].local)}
    if failing:
        body["failing"] = failing
    return json_response(body, status=503 if failing else 200)


@web.middleware
async def _request_metrics(request: web.Request, handler):
    """HTTP metrics for every route but the sockets (a connection lasts for days, not a request)."""
    if request.path.startswith(("/ocpp16/", "/ocpp/")):
        return await handler(request)
    return await metrics_middleware(request, handler)


def create_gateway_app(settings: GatewaySettings, *, base_url: str) -> web.Application:
    """The gateway, sending ingest's requests to `base_url` (CPMS_BASE_URL, or in `cpms run all`
    the process's own API)."""
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[_request_metrics, problem_middleware])
    app[SETTINGS] = settings
    # every frame, with its idTags, only when asked for: at INFO it would be a line per call
    frames.setLevel(logging.DEBUG if settings.log_level.upper() == "DEBUG" else logging.WARNING)
    for path in SOCKET_PATHS:
        app.router.add_get(path, charger_socket)
    app.router.add_post("/v1/gateway/commands", send_command)
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/healthz", readyz)
    app.router.add_get("/metrics", metrics_endpoint)
    app.cleanup_ctx.append(_cpms_ctx(base_url))
    app.cleanup_ctx.append(_switchboard_ctx)
    app.on_shutdown.append(_going_away)
    return app


def _cpms_ctx(base_url: str):
    async def cpms_ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        connector = aiohttp.TCPConnector(limit=256)
        async with aiohttp.ClientSession(connector=connector) as session:
            app[CPMS] = CpmsClient(session, base_url=base_url, api_key=settings.api_key.get_secret_value(),
                                   linger=settings.batch_linger_seconds)
            yield
            await app[CPMS].close()

    return cpms_ctx


async def _switchboard_ctx(app: web.Application) -> AsyncIterator[None]:
    """The broker connection starts in the background: chargers are served meanwhile (commands
    reach only those held here, and /readyz says the broker is missing)."""
    settings = app[SETTINGS]
    switchboard = app[SWITCHBOARD] = Switchboard(settings.amqp_url, settings.amqp_prefix,
                                                 command_timeout=settings.command_timeout_seconds)

    async def deliver(cp: str, command_type: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return await deliver_here(app, cp, command_type, payload)

    connecting = asyncio.create_task(wait_for("broker", settings.amqp_url, lambda: switchboard.connect(deliver)))
    yield
    connecting.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await connecting
    await switchboard.close()


async def _going_away(app: web.Application) -> None:
    """SIGTERM: each charger's calls received so far are answered, then its socket closes with
    1001 (going away), so it reconnects to another process, and its ChargerDisconnected is
    delivered while ingest still listens (in `cpms run all`, the same process)."""
    switchboard = app[SWITCHBOARD]
    if switchboard.sent_away:  # done already: `cpms run all` sends the chargers away before the rest stops
        return
    switchboard.sent_away = True
    connections = list(switchboard.local.values())
    deadline = app[SETTINGS].call_deadline_seconds + 1

    async def leave(connection: ChargerConnection) -> None:
        await connection.finish_calls(deadline)
        await connection.close(GOING_AWAY, "GoingAway")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(deadline):
                await connection.ended.wait()  # its ChargerDisconnected has reached ingest

    if connections:
        log.info("closing charger connections", extra={"connections": len(connections)})
        await asyncio.gather(*(leave(c) for c in connections), return_exceptions=True)
