"""One connected charger: one handler per OCPP 1.6 action a charger sends (the specification's
table, in its order), dispatched with the `ocpp` library's messages and schemas. Each handler asks
the CPMS what it needs through the narrow client (services/gateway/cpms.py) and answers only once
ingest has taken the call's events.

Strict where OCPP is: BootNotification, Heartbeat, DataTransfer and the firmware and diagnostics
notifications are checked by the library's schemas. Lenient where CONTRACT section 1 says so: in
StatusNotification, Authorize, StartTransaction, StopTransaction and MeterValues what a charger
got wrong but can be attributed is taken (ingest flags it), since a CallError there makes the
charger send the same message for ever; only a field that cannot be read is refused.

A connection holds as little as it can while its charger is idle (a gateway holds thousands): no
task, queue or per-connection route map; a task answers while calls are waiting."""
from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import WSMsgType, web
from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.exceptions import (
    FormationViolationError,
    InternalError,
    NotImplementedError as OcppNotImplemented,
    NotSupportedError,
    OCPPError,
    TypeConstraintViolationError,
)
import ocpp.messages
from ocpp.messages import Call, CallError, CallResult, MessageType, unpack, validate_payload
from ocpp.routing import create_route_map, on
from ocpp.v16 import call_result
from ocpp.v16.enums import Action, DataTransferStatus, RegistrationStatus

from services.gateway import call_events, metrics
from services.gateway.cpms import CpmsClient, EventsRefused, IngestUnavailable

log = logging.getLogger(__name__)
frames = logging.getLogger("cpms.gateway.frames")  # every frame sent, at INFO
_UNIQUE_ID = re.compile(r'^\s*\[\s*2\s*,\s*"([^"\\]{1,64})"')  # a call's: only a call is answered
# OCPP-J allows one call in flight per charger; a charger that floods waits its turn up to here,
# beyond it hears InternalError (and sends again later) rather than holding the process's memory.
MAX_QUEUED_CALLS = 100
OCPP_VERSION = "1.6"
# OCPP 2.0's names that the library uses for 1.6 too; OCPP-J 1.6 spells them so.
_OCPP16_CODES = {"FormatViolation": "FormationViolation", "OccurrenceConstraintViolation": "OccurenceConstraintViolation"}
_OCPP16_ACTIONS = frozenset(action.value for action in Action)

# The library validates in a thread of the default executor by default: for a schema check of a
# few fields the hop costs more than the check (which holds the GIL anyway). Checked in the loop.
ocpp.messages.ASYNC_VALIDATION = False

Handler = Callable[["ChargerConnection"], Awaitable[Any]]


def routes_of(cls: type) -> dict[str, tuple[Handler, bool]]:
    """A class's `@on` handlers by action: (the handler, whether the library's schemas check the
    call and its answer). Once per class: the library's ChargePoint builds this map of bound
    methods for every connection."""
    return {str(action): (route["_on_action"], not route["_skip_schema_validation"])
            for action, route in create_route_map(cls).items() if "_on_action" in route}


async def answer_call(message: Call, handler: Handler, connection: "ChargerConnection", checked: bool) -> CallResult | CallError:
    """What the library's ChargePoint._handle_call answers a call with, without its per-call
    camelCase-to-snake_case copy of the payload (our handlers read it as sent) and signature
    inspection: the call checked against its schema (an OCPPError raised here is refused by the
    caller), the handler's result as a camelCase CallResult, checked too; a handler's exception
    as its CallError (InternalError for one that is no OCPPError)."""
    if checked:
        await validate_payload(message, OCPP_VERSION)
    try:
        result = await handler(connection)
    except Exception as error:
        if not isinstance(error, OCPPError):  # a refusal is an answer; anything else is a bug
            frames.exception("Error while handling request '%s'", message)
        return message.create_call_error(error)
    answer = message.create_call_result(snake_to_camel_case(remove_nones(serialize_as_dict(result))))
    if checked:
        await validate_payload(answer, OCPP_VERSION)
    return answer


class CommandRefused(Exception):
    """The charger answered a command with a CallError."""

    def __init__(self, error_code: str, description: str) -> None:
        super().__init__(f"{error_code}: {description}")
        self.error_code, self.description = error_code, description


class ChargerConnection:
    """Reads frames as they come: answers to our commands go straight to the waiting command,
    the charger's calls are answered one at a time in the order they came (their events reach
    ingest in the charger's order)."""

    __slots__ = ("id", "ws", "cpms", "heartbeat_seconds", "call_deadline", "command_timeout", "accepted_vendors",
                 "remote_addr", "current", "close_reason", "_deadline", "_received_at", "_answered", "_answering",
                 "_waiting", "_commanding", "_awaited", "_ended")
    routes: dict[str, tuple[Handler, bool]]  # set below the class: its handlers

    def __init__(self, charge_point_id: str, ws: web.WebSocketResponse, *, cpms: CpmsClient, heartbeat_seconds: int,
                 call_deadline: float, command_timeout: float, accepted_vendors: frozenset[str], remote_addr: str | None) -> None:
        self.id, self.ws, self.cpms = charge_point_id, ws, cpms
        self.heartbeat_seconds, self.call_deadline, self.command_timeout = heartbeat_seconds, call_deadline, command_timeout
        self.accepted_vendors, self.remote_addr = accepted_vendors, remote_addr
        self.current: Call | None = None  # the call being answered (its payload as the charger sent it)
        self.close_reason: str | None = None  # set when we close it (replaced, shutting down)
        self._deadline = 0.0
        self._received_at = call_events.now_ms()
        self._answered: str | None = None
        self._answering: asyncio.Task | None = None  # while calls are being answered
        self._waiting: list[Call] | None = None  # calls received while another is answered, in order
        self._commanding: asyncio.Lock | None = None  # one command in flight at a time, once there was one
        self._awaited: tuple[str, asyncio.Future] | None = None  # (unique id, future) of the command in flight
        self._ended: asyncio.Event | None = None

    @property
    def ended(self) -> asyncio.Event:
        """Set once the connection is gone and its ChargerDisconnected delivered."""
        if self._ended is None:
            self._ended = asyncio.Event()
        return self._ended

    # --- the socket ----------------------------------------------------------------------------

    async def serve(self) -> None:
        """Read frames until the socket closes."""
        try:
            async for frame in self.ws:
                if frame.type == WSMsgType.TEXT:
                    await self._receive(frame.data)
                elif frame.type == WSMsgType.BINARY:
                    await self._receive(frame.data.decode("utf-8", "replace"))
                elif frame.type == WSMsgType.ERROR:
                    break
        finally:
            if self._answering is not None:
                self._answering.cancel()

    async def finish_calls(self, timeout: float) -> None:
        """Wait until the calls received so far are answered (graceful shutdown)."""
        if self._answering is not None:
            done, _ = await asyncio.wait({self._answering}, timeout=timeout)
            if not done:
                log.warning("calls still unanswered at shutdown", extra={"charge_point_id": self.id})

    async def close(self, code: int, reason: str) -> None:
        self.close_reason = reason
        await self.ws.close(code=code, message=reason.encode())

    async def _receive(self, raw: str) -> None:
        try:
            message = unpack(raw)
            if message.message_type_id == MessageType.Call and not (
                    isinstance(message.unique_id, str) and isinstance(message.action, str) and isinstance(message.payload, dict)):
                raise FormationViolationError(details={"cause": "a call is [2, uniqueId, action, {payload}]"})
        except OCPPError as error:
            metrics.CALLS.labels("unparseable", "refused").inc()
            found = _UNIQUE_ID.match(raw)
            if found:  # where no unique id can be read, OCPP-J has nowhere to send an answer
                code = "FormationViolation" if error.code in ("FormatViolation", "ProtocolError") else _code(error)
                await self._send(CallError(found.group(1), code, error.description or "unparseable frame", {}).to_json())
            return
        if message.message_type_id == MessageType.Call:
            if self._answering is None:
                self._answering = asyncio.create_task(self._answer_calls(message), name=f"ocpp:{self.id}")
            elif self._waiting is None:
                self._waiting = [message]
            elif len(self._waiting) >= MAX_QUEUED_CALLS:
                metrics.CALLS.labels(_action_label(message.action), "unavailable").inc()
                await self._send(CallError(message.unique_id, "InternalError", "too many calls at once: send one at a time", {}).to_json())
            else:
                self._waiting.append(message)
        elif self._awaited is not None and self._awaited[0] == message.unique_id and not self._awaited[1].done():
            self._awaited[1].set_result(message)
        else:
            frames.error("Ignoring response with unknown unique id: %s", message)

    async def _answer_calls(self, message: Call) -> None:
        """Answer `message`, then each call that came meanwhile; ends when none waits."""
        try:
            while True:
                try:
                    await self._answer(message)
                except (ConnectionError, RuntimeError) as exc:  # the socket closed while answering
                    log.info("answer not sent: socket closed", extra={"charge_point_id": self.id, "error": repr(exc)})
                if not self._waiting:
                    break
                message = self._waiting.pop(0)
        finally:
            self._answering = self._waiting = None

    async def _answer(self, message: Call) -> None:
        action = message.action
        self._answered = None
        self._deadline = time.monotonic() + self.call_deadline
        self._received_at = call_events.now_ms()
        route = self.routes.get(action)
        if route is None:
            # OCPP-J 1.6: NotImplemented for an action the receiver does not know, NotSupported for
            # one it knows (a central system's own action, sent by a charger) and does not support.
            error = NotSupportedError() if action in _OCPP16_ACTIONS else OcppNotImplemented()
            await self._send(message.create_call_error(error).to_json())
            metrics.CALLS.labels(_action_label(action), _outcome(error.code)).inc()
            return
        self.current = message
        handler, checked = route
        try:
            answer = await answer_call(message, handler, self, checked)
        except OCPPError as error:  # the schema said no, to the call or to our answer
            answer = CallError(message.unique_id, _code(error), error.description, _cause(error))
        await self._send(answer.to_json())
        metrics.CALLS.labels(action, self._answered or "refused").inc()

    async def _send(self, message: str) -> None:
        if message.startswith("[3,"):
            self._answered = "answered"
        elif message.startswith("[4,"):
            code = json.loads(message)[2]
            self._answered = _outcome(code)
            if code in _OCPP16_CODES:
                parsed = json.loads(message)
                parsed[2] = _OCPP16_CODES[code]
                message = json.dumps(parsed, separators=(",", ":"))
        frames.info("%s: send %s", self.id, message)
        await self.ws.send_str(message)

    # --- what the handlers share ---------------------------------------------------------------

    @property
    def payload(self) -> dict[str, Any]:
        assert self.current is not None
        return self.current.payload

    def _events(self, build: Callable[[datetime], list[dict[str, Any]]]) -> list[dict[str, Any]]:
        """The call's events, or the CallError for a field that cannot be read."""
        try:
            return build(self._received_at)
        except call_events.Unreadable as exc:
            raise TypeConstraintViolationError(description=str(exc), details={"field": exc.field}) from None

    async def _report(self, action: str, made: list[dict[str, Any]], *, stamped: bool = True) -> None:
        """Hand the call's events to ingest, or raise the CallError the charger must hear.
        `stamped=False`: the message carries no timestamp of the charger's, so its identity
        includes the receipt time (two boots an hour apart are two events)."""
        key = call_events.call_key(self.id, action, self.payload, None if stamped else self._received_at)
        try:
            await self.cpms.deliver(call_events.identified(key, made), deadline=self._deadline)
        except IngestUnavailable:
            raise InternalError(description="the central system could not store this message in time; send it again") from None
        except EventsRefused as refused:
            raise TypeConstraintViolationError(description=str(refused)[:500]) from None

    async def _authorize(self, id_tag: Any, connector_id: Any) -> dict[str, Any]:
        if not isinstance(id_tag, str):
            return {"status": "Invalid"}
        connector = connector_id if isinstance(connector_id, int) and not isinstance(connector_id, bool) else None
        try:
            return await self.cpms.authorize(self.id, id_tag, connector, deadline=self._deadline)
        except IngestUnavailable:
            raise InternalError(description="the central system could not authorize the idTag in time; send it again") from None

    # --- the calls a charger makes (OCPP 1.6, section 4) ---------------------------------------

    @on(Action.authorize, skip_schema_validation=True)
    async def on_authorize(self, **_: Any) -> call_result.Authorize:
        if not isinstance(self.payload.get("idTag"), str):
            raise TypeConstraintViolationError(description="idTag must be a string")
        return call_result.Authorize(id_tag_info=await self._authorize(self.payload["idTag"], None))

    @on(Action.boot_notification)
    async def on_boot_notification(self, **_: Any) -> call_result.BootNotification:
        await self._report("BootNotification", self._events(lambda at: call_events.booted(self.id, self.payload, at)), stamped=False)
        return call_result.BootNotification(current_time=call_events.stamp(call_events.now_ms()), interval=self.heartbeat_seconds,
                                            status=RegistrationStatus.accepted)

    @on(Action.data_transfer)
    async def on_data_transfer(self, **_: Any) -> call_result.DataTransfer:
        await self._report("DataTransfer", self._events(lambda at: call_events.data_transfer(self.id, self.payload, at)), stamped=False)
        known = self.payload.get("vendorId") in self.accepted_vendors
        return call_result.DataTransfer(status=DataTransferStatus.accepted if known else DataTransferStatus.unknown_vendor_id)

    @on(Action.diagnostics_status_notification)
    async def on_diagnostics_status_notification(self, **_: Any) -> call_result.DiagnosticsStatusNotification:
        made = self._events(lambda at: call_events.diagnostics_status(self.id, self.payload, at))
        await self._report("DiagnosticsStatusNotification", made, stamped=False)
        return call_result.DiagnosticsStatusNotification()

    @on(Action.firmware_status_notification)
    async def on_firmware_status_notification(self, **_: Any) -> call_result.FirmwareStatusNotification:
        made = self._events(lambda at: call_events.firmware_status(self.id, self.payload, at))
        await self._report("FirmwareStatusNotification", made, stamped=False)
        return call_result.FirmwareStatusNotification()

    @on(Action.heartbeat)
    async def on_heartbeat(self, **_: Any) -> call_result.Heartbeat:
        await self._report("Heartbeat", self._events(lambda at: call_events.heartbeat(self.id, at)), stamped=False)
        return call_result.Heartbeat(current_time=call_events.stamp(call_events.now_ms()))

    @on(Action.meter_values, skip_schema_validation=True)
    async def on_meter_values(self, **_: Any) -> call_result.MeterValues:
        await self._report("MeterValues", self._events(lambda at: call_events.meter_samples(self.id, self.payload, at)))
        return call_result.MeterValues()

    @on(Action.start_transaction, skip_schema_validation=True)
    async def on_start_transaction(self, **_: Any) -> call_result.StartTransaction:
        tx = call_events.transaction_id(self.id, self.payload)
        made = self._events(lambda at: call_events.transaction_started(self.id, self.payload, tx, at))
        # The transaction is reported whatever the answer (the charger may have started already);
        # an Invalid or Blocked tag is refused at the charger, which stops before energy flows.
        info = await self._authorize(self.payload.get("idTag"), self.payload.get("connectorId"))
        await self._report("StartTransaction", made)
        return call_result.StartTransaction(transaction_id=tx, id_tag_info=info)

    @on(Action.status_notification, skip_schema_validation=True)
    async def on_status_notification(self, **_: Any) -> call_result.StatusNotification:
        stamped = isinstance(self.payload.get("timestamp"), str)
        made = self._events(lambda at: call_events.status_changed(self.id, self.payload, at))
        await self._report("StatusNotification", made, stamped=stamped)
        return call_result.StatusNotification()

    @on(Action.stop_transaction, skip_schema_validation=True)
    async def on_stop_transaction(self, **_: Any) -> call_result.StopTransaction:
        await self._report("StopTransaction", self._events(lambda at: call_events.transaction_ended(self.id, self.payload, at)))
        return call_result.StopTransaction()

    # --- commands to the charger ---------------------------------------------------------------

    async def send_command(self, action: str, payload: dict[str, Any]) -> tuple[str, Any]:
        """Send one central system call and wait for the charger's answer: (unique id, its
        CallResult payload). Raises CommandRefused for a CallError, TimeoutError without answer."""
        call = Call(unique_id=str(uuid.uuid4()), action=action, payload=payload)
        if self._commanding is None:
            self._commanding = asyncio.Lock()
        async with self._commanding:
            self._awaited = (call.unique_id, asyncio.get_running_loop().create_future())
            try:
                await self._send(call.to_json())
                async with asyncio.timeout(self.command_timeout):
                    response = await self._awaited[1]
            finally:
                self._awaited = None
        if response.message_type_id == MessageType.CallError:
            raise CommandRefused(str(response.error_code), str(response.error_description))
        return call.unique_id, response.payload


ChargerConnection.routes = routes_of(ChargerConnection)


def _code(error: OCPPError) -> str:
    return _OCPP16_CODES.get(error.code, error.code)


def _cause(error: OCPPError) -> dict[str, Any]:
    cause = error.details.get("cause") if isinstance(error.details, dict) else None
    return {"cause": str(cause)[:500]} if cause else {}


def _action_label(action: str) -> str:
    """A charger's action as a metric label: one of OCPP 1.6's, or `unknown` (labels stay bounded)."""
    return action if action in _OCPP16_ACTIONS else "unknown"


def _outcome(code: str) -> str:
    return "unavailable" if code == "InternalError" else "refused"

