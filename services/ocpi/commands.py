"""OCPI 2.2.1 Commands module, RECEIVER (mod_commands.asciidoc): a partner asks the CPO to start or
stop a session, unlock a connector, reserve an EVSE or cancel a reservation.

- `POST {commands}/{command}` answers a CommandResponse at once ("Receiver Interface": ACCEPTED,
  REJECTED, NOT_SUPPORTED, UNKNOWN_SESSION, with the `timeout` in seconds) and orders the OCPP 1.6
  command from the commands service (`command.ordered`: RemoteStartTransaction,
  RemoteStopTransaction, UnlockConnector, ReserveNow, CancelReservation).
- The charger's answer comes back as `command.finished`; its CommandResult is POSTed to the
  command's `response_url` through the push outbox (retried while the partner is down). A command
  with no outcome by its timeout gets TIMEOUT, and a later outcome is not sent.
- OCPP's idTag is a CiString(20): a START_SESSION or RESERVE_NOW whose token uid is longer is
  REJECTED (no charger could be given it). The token handed over is kept as the partner's
  (services/ocpi/tokens.py), so the session it starts is the partner's; a START_SESSION or
  RESERVE_NOW keeps its token uid and EVSE (a RESERVE_NOW its reservation and expiry_date too), so
  the session it started says auth_method COMMAND (services/ocpi/sessions.py `claim_its_command`)."""
from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ConfigDict, StringConstraints

from services.ocpi import locations, store
from services.ocpi.modules import ANSWERS, OcpiModule
from services.ocpi.push import wake_push
from services.ocpi.tokens import DateTime, OcpiToken, ci_string, keep
from services.ocpi.transport import BASE, PARTNER, invalid, ok, read_body, timestamp
from shared.app import unit_of_work
from shared.consumer import Message
from shared.domain import CommandFinished, CommandOrdered
from shared.events import ID_TAG_MAX
from shared.openapi import Operation
from shared.outbox import enqueue_domain
from shared.periodic import every

log = logging.getLogger(__name__)
SCHEMA = "ocpi"
MODULE_ID = "commands"
TTL_SECONDS = 60.0  # how long the commands service tries to reach the charger
TIMEOUT_SECONDS = 90  # CommandResponse.timeout: the TTL, the gateway's answer and our margin
Url = Annotated[str, StringConstraints(max_length=255, pattern=r"^https?://\S+$")]

# --- objects (mod_commands.asciidoc "Object description") ----------------------------------------


class _Command(BaseModel):
    model_config = ConfigDict(extra="ignore")
    response_url: Url


class StartSession(_Command):
    token: OcpiToken
    location_id: ci_string(36)
    evse_uid: ci_string(36) | None = None
    connector_id: ci_string(36) | None = None
    authorization_reference: ci_string(36) | None = None


class StopSession(_Command):
    session_id: ci_string(36)


class UnlockConnector(_Command):
    location_id: ci_string(36)
    evse_uid: ci_string(36)
    connector_id: ci_string(36)


class ReserveNow(_Command):
    token: OcpiToken
    expiry_date: DateTime
    reservation_id: ci_string(36)
    location_id: ci_string(36)
    evse_uid: ci_string(36) | None = None
    authorization_reference: ci_string(36) | None = None


class CancelReservation(_Command):
    reservation_id: ci_string(36)


BODIES: dict[str, type[_Command]] = {
    "START_SESSION": StartSession, "STOP_SESSION": StopSession, "UNLOCK_CONNECTOR": UnlockConnector,
    "RESERVE_NOW": ReserveNow, "CANCEL_RESERVATION": CancelReservation,
}
ResponseType = Literal["ACCEPTED", "NOT_SUPPORTED", "REJECTED", "UNKNOWN_SESSION"]


def command_response(result: ResponseType, message: str | None = None) -> dict[str, Any]:
    """CommandResponse: the result, the timeout in seconds, and why, as a DisplayText."""
    response: dict[str, Any] = {"result": result, "timeout": TIMEOUT_SECONDS}
    if message:
        response["message"] = [{"language": "en", "text": message[:512]}]
    return response


# --- the Receiver interface ------------------------------------------------------------------------


class _Rejected(Exception):
    def __init__(self, result: ResponseType, message: str) -> None:
        super().__init__(message)
        self.result, self.message = result, message


async def post_command(request: web.Request) -> web.Response:
    name = request.match_info["command"]
    if name not in BODIES:
        raise invalid(f"unknown command {name!r}: one of {', '.join(BODIES)}")
    body = await read_body(request, BODIES[name])
    partner_id = request[PARTNER].partner_id
    command_id = uuid.uuid4()
    try:
        async with unit_of_work(request.app, SCHEMA) as conn:
            ocpp_type, charge_point_id, payload = await _ocpp_command(conn, name, body, partner_id)
            await store.commands.create(conn, command_id, partner_id, name, body.response_url, charge_point_id, TIMEOUT_SECONDS,
                                        **_kept(name, body, payload))
            await enqueue_domain(conn, SCHEMA, CommandOrdered(
                type=ocpp_type, chargePointId=charge_point_id, idempotencyKey=f"ocpi:{command_id}", payload=payload,
                ttlSeconds=TTL_SECONDS, at=datetime.now(UTC)))
    except _Rejected as rejected:
        return ok(command_response(rejected.result, rejected.message))
    return ok(command_response("ACCEPTED"))


def _kept(name: str, body: Any, payload: dict[str, Any]) -> dict[str, Any]:
    """What a command keeps beyond its charger: the token uid, connector and authorization_reference
    of one that may start a session (services/ocpi/sessions.py `claim_its_command`); the
    reservation_id of a RESERVE_NOW (with its expiry_date) or CANCEL_RESERVATION."""
    kept: dict[str, Any] = {}
    if name in ("START_SESSION", "RESERVE_NOW"):
        kept = {"token_uid": body.token.uid, "connector_id": payload.get("connectorId") or None,
                "authorization_reference": body.authorization_reference}
    if name == "RESERVE_NOW":
        kept["reserved_until"] = body.expiry_date
    if name in ("RESERVE_NOW", "CANCEL_RESERVATION"):
        kept["reservation_id"] = body.reservation_id
    return kept


async def _ocpp_command(conn: asyncpg.Connection, name: str, body: Any, partner_id: UUID) -> tuple[str, str, dict[str, Any]]:
    """The OCPP 1.6 command a partner's command is: (type, chargePointId, payload), or _Rejected."""
    if name == "START_SESSION":
        charge_point_id, connector_id = await _evse(conn, body.location_id, body.evse_uid)
        await _handed_over(conn, partner_id, body.token)
        payload: dict[str, Any] = {"idTag": body.token.uid}
        if connector_id is not None:
            payload["connectorId"] = connector_id
        return "RemoteStartTransaction", charge_point_id, payload
    if name == "STOP_SESSION":
        session = None
        try:
            session = await store.commands.going_session(conn, UUID(body.session_id), partner_id)
        except ValueError:
            pass
        if session is None:
            raise _Rejected("UNKNOWN_SESSION", f"no session {body.session_id} of yours is going")
        return "RemoteStopTransaction", session["charge_point_id"], {"transactionId": session["transaction_id"]}
    if name == "UNLOCK_CONNECTOR":
        charge_point_id, connector_id = await _evse(conn, body.location_id, body.evse_uid)
        return "UnlockConnector", charge_point_id, {"connectorId": connector_id}
    if name == "RESERVE_NOW":
        charge_point_id, connector_id = await _evse(conn, body.location_id, body.evse_uid)
        await _handed_over(conn, partner_id, body.token)
        reservation = await store.commands.reservation(conn, partner_id, body.reservation_id, charge_point_id)
        payload = {"connectorId": connector_id or 0, "expiryDate": timestamp(body.expiry_date), "idTag": body.token.uid,
                   "reservationId": reservation["ocpp_reservation_id"]}
        if body.token.group_id and len(body.token.group_id) <= ID_TAG_MAX:
            payload["parentIdTag"] = body.token.group_id
        return "ReserveNow", charge_point_id, payload
    reservation = await store.commands.reservation(conn, partner_id, body.reservation_id, None)
    if reservation is None:
        raise _Rejected("REJECTED", f"no reservation {body.reservation_id} of yours")
    return "CancelReservation", reservation["charge_point_id"], {"reservationId": reservation["ocpp_reservation_id"]}


async def _evse(conn: asyncpg.Connection, location_id: str, evse_uid: str | None) -> tuple[str, int | None]:
    """(chargePointId, OCPP connectorId) of an EVSE of a published Location (its EVSE uid names the
    charger's connector: services/ocpi/locations.py); a Location of one charger stands for it
    when no EVSE is named. REJECTED for anything else."""
    try:
        site = await store.locations.site(conn, UUID(location_id))
    except ValueError:
        site = None
    if site is None:
        raise _Rejected("REJECTED", f"unknown location {location_id}")
    if evse_uid is None:
        chargers = {row["charge_point_id"] for row in (await store.locations.evses_of_sites(conn, [site["site_id"]])).get(
            site["site_id"], [])}
        if len(chargers) != 1:
            raise _Rejected("REJECTED", "name the EVSE: this location has more than one charger")
        return chargers.pop(), None
    key = locations.parse_evse_uid(evse_uid)
    row = await store.locations.evse(conn, *key) if key else None
    if row is None or row["site_id"] != site["site_id"]:
        raise _Rejected("REJECTED", f"unknown EVSE {evse_uid} at location {location_id}")
    return key


async def _handed_over(conn: asyncpg.Connection, partner_id: UUID, token: OcpiToken) -> None:
    if len(token.uid) > ID_TAG_MAX:
        raise _Rejected("REJECTED", f"the token's uid is longer than {ID_TAG_MAX} characters: an OCPP 1.6 charger cannot take it")
    await keep(conn, partner_id, token)


MODULE = OcpiModule(MODULE_ID, ("RECEIVER",), (
    Operation("POST", f"{BASE}/{MODULE_ID}/{{command}}", post_command,
              "OCPI Commands: START_SESSION, STOP_SESSION, UNLOCK_CONNECTOR, RESERVE_NOW, CANCEL_RESERVATION", "ocpi",
              ANSWERS),
))

# --- the charger's answer: the CommandResult ----------------------------------------------------------

# The charger's OCPP 1.6 answer (`response.status`) per command type, as a CommandResultType.
_RESULTS = {
    "RemoteStartTransaction": {"Accepted": "ACCEPTED", "Rejected": "REJECTED"},
    "RemoteStopTransaction": {"Accepted": "ACCEPTED", "Rejected": "REJECTED"},
    "UnlockConnector": {"Unlocked": "ACCEPTED", "UnlockFailed": "FAILED", "NotSupported": "NOT_SUPPORTED"},
    "ReserveNow": {"Accepted": "ACCEPTED", "Faulted": "EVSE_INOPERATIVE", "Occupied": "EVSE_OCCUPIED",
                   "Rejected": "REJECTED", "Unavailable": "EVSE_INOPERATIVE"},
    "CancelReservation": {"Accepted": "ACCEPTED", "Rejected": "UNKNOWN_RESERVATION"},
}


def command_result(finished: CommandFinished) -> str:
    """CommandResultType of an outcome: the charger's answer, or what kept it from answering."""
    if finished.status == "Acked":
        status = (finished.response or {}).get("status")
        return _RESULTS.get(finished.type, {}).get(status, "FAILED")
    if finished.outcome == "call_error" and (finished.response or {}).get("errorCode") in ("NotImplemented", "NotSupported"):
        return "NOT_SUPPORTED"
    if finished.outcome in ("timeout", "expired", "unknown"):
        return "TIMEOUT"  # the charger did not answer (or could not be reached) in time
    return "FAILED"


async def send_result(conn: asyncpg.Connection, command: asyncpg.Record, result: str) -> None:
    """POST the CommandResult to the command's response_url, durably (the push outbox)."""
    await store.push.enqueue(conn, [command["partner_id"]], module=MODULE_ID, object_key=f"command/{command['command_id']}",
                             method="POST", path=command["response_url"], body={"result": result})


async def apply_results(conn: asyncpg.Connection, messages: list[Message]) -> None:
    for message in messages:
        finished = CommandFinished.model_validate(message.body)
        if not finished.idempotencyKey.startswith("ocpi:"):
            continue  # another service's order
        try:
            command_id = UUID(finished.idempotencyKey.removeprefix("ocpi:"))
        except ValueError:
            continue
        command = await store.commands.finish(conn, command_id, command_result(finished))
        if command is not None:
            await send_result(conn, command, command["result"])


async def _time_out(app: web.Application) -> None:
    async with unit_of_work(app, SCHEMA) as conn:
        timed_out = await store.commands.timed_out(conn)
        for command in timed_out:
            await send_result(conn, command, "TIMEOUT")
    if timed_out:
        wake_push(app)


timeout_sweeper = every("ocpi:command-timeouts", lambda app: 5.0, _time_out)
