"""Commands: operators' commands for chargers, stored with their dispatch message in one
transaction and delivered to the gateway by the dispatcher. Every route is listed here."""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from uuid import UUID

import aiohttp
import asyncpg
from aiohttp import web

from services.commands import store
from services.commands.dispatcher import DISPATCHER, Dispatcher
from services.commands.gateway import GatewayClient
from services.commands.models import FINAL_STATUSES, CommandRequest, CreateQuery, ListQuery, command_request_body, new_command
from services.commands.responses import Command
from shared.app import CONSUMERS, POOL, SETTINGS, outbox_relay, unit_of_work
from shared.domain import CommandRequested
from shared.http import Problem, found, json_response, parse_body, parse_query, path_uuid
from shared.openapi import Body, Fragment, Operation, page_of
from shared.outbox import enqueue_domain
from shared.pagination import decode_cursor, page

SCHEMA = store.SCHEMA
_WAIT_POLL_SECONDS = 0.1


async def create_command(request: web.Request) -> web.Response:
    """202 Queued; an idempotency key seen before gives its command (200), or 409 for another body.
    `?wait=SECONDS` answers 200 once the command is Acked or Failed, else 202 with where it is."""
    wait = parse_query(request, CreateQuery).wait
    command = new_command(await parse_body(request, CommandRequest))
    pool = request.app[POOL]
    async with unit_of_work(request.app, SCHEMA) as conn:
        row, created = await store.create_command(conn, command, ttl_seconds=request.app[SETTINGS].command_ttl_seconds)
        if created:  # its dispatch message, in the same transaction
            await enqueue_domain(conn, SCHEMA, CommandRequested(commandId=row["command_id"]))
    if not created and row["fingerprint"] != command.fingerprint:
        raise Problem(409, "Idempotency key reused",
                      f"idempotency key {command.idempotencyKey!r} was used for another command ({row['command_id']})")
    if wait is not None:
        row = await _await_outcome(pool, row, wait)
        return json_response(Command.from_row(row), status=200 if row["status"] in FINAL_STATUSES else 202)
    return json_response(Command.from_row(row), status=202 if created else 200)


async def _await_outcome(pool: asyncpg.Pool, row: asyncpg.Record, seconds: float) -> asyncpg.Record:
    """The command once final, or as it is when `seconds` have passed. Polls the database, so
    it sees the outcome whichever replica delivers the command."""
    deadline = time.monotonic() + seconds
    while row["status"] not in FINAL_STATUSES and time.monotonic() < deadline:
        await asyncio.sleep(min(_WAIT_POLL_SECONDS, max(deadline - time.monotonic(), 0)))
        async with pool.acquire() as conn:
            row = await store.get_command(conn, row["command_id"])
    return row


async def get_command(request: web.Request) -> web.Response:
    command_id = path_uuid(request, "commandId", "command")
    async with request.app[POOL].acquire() as conn:
        row = found(await store.get_command(conn, command_id), "command", f"no command {command_id}")
    return json_response(Command.from_row(row))


async def list_commands(request: web.Request) -> web.Response:
    """Newest first, filtered by charger and status."""
    query = parse_query(request, ListQuery)
    after = decode_cursor(query.cursor, id_type=UUID) if query.cursor else None
    async with request.app[POOL].acquire() as conn:
        rows = await store.list_commands(conn, charge_point_id=query.chargePointId, status=query.status,
                                         limit=query.limit, after=after)
    return json_response(page(rows, query.limit, Command.from_row, lambda r: (r["created_at"], r["command_id"])))


async def dispatcher_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    # A fresh connection per request: a pooled one the gateway already closed would fail after
    # the request left, which reads as "outcome unknown" and would cost the command.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        gateway = GatewayClient(
            session, base_url=settings.gateway_base_url, timeout_seconds=settings.gateway_timeout_seconds,
            api_key=settings.gateway_api_key.get_secret_value() if settings.gateway_api_key else None,
        )
        relay = outbox_relay(app, SCHEMA)
        dispatcher = Dispatcher(pool=app[POOL], gateway=gateway, gateway_timeout_seconds=settings.gateway_timeout_seconds,
                                on_final=relay.wake)
        app[DISPATCHER] = dispatcher
        await dispatcher.start()
        app[CONSUMERS].append(dispatcher)  # /readyz reports it with the consumers
        yield
        await dispatcher.stop()


_BODY_SCHEMA, _PAYLOAD_SCHEMAS = command_request_body()

# Every route of the service: its handler, request and response models, auth and errors.
API = Fragment("commands", (
    Operation("POST", "/v1/commands", create_command, "Queue a command for a charger (?wait=SECONDS for its outcome)", "operator",
              {200: Command, 202: Command}, body=Body(_BODY_SCHEMA, schemas=_PAYLOAD_SCHEMAS), query=CreateQuery, errors=(409,)),
    Operation("GET", "/v1/commands", list_commands, "Commands, newest first", "viewer", {200: page_of(Command)}, query=ListQuery),
    Operation("GET", "/v1/commands/{commandId}", get_command, "One command", "viewer", {200: Command}),
), "Commands for chargers, delivered through the gateway")
