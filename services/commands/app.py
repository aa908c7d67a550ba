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

from services.commands import consumers, store
from services.commands.dispatcher import Dispatcher
from services.commands.gateway import GatewayClient
from services.commands.models import FINAL_STATUSES, CommandRequest, CreateQuery, ListQuery, new_command
from shared.app import CONSUMERS, POOL, SETTINGS, add_consumer, add_outbox_relay, outbox_relay
from shared.http import Problem, json_response, parse_body, parse_query
from shared.pagination import decode_cursor, page
from shared.topology import COMMANDS_ACKS, COMMANDS_DISPATCH

SCHEMA = store.SCHEMA
DISPATCHER = web.AppKey("commands_dispatcher", Dispatcher)
_WAIT_POLL_SECONDS = 0.1


async def create_command(request: web.Request) -> web.Response:
    """202 Queued; an idempotency key seen before gives its command (200), or 409 for another body.
    `?wait=SECONDS` answers 200 once the command is Acked or Failed, else 202 with where it is."""
    wait = parse_query(request, CreateQuery).wait
    command = new_command(await parse_body(request, CommandRequest))
    pool = request.app[POOL]
    async with pool.acquire() as conn:
        row, created = await store.create_command(conn, command, ttl_seconds=request.app[SETTINGS].command_ttl_seconds)
    if not created and row["fingerprint"] != command.fingerprint:
        raise Problem(409, "Idempotency key reused",
                      f"idempotency key {command.idempotencyKey!r} was used for another command ({row['command_id']})")
    if created:
        outbox_relay(request.app, SCHEMA).wake()
    if wait is not None:
        row = await _await_outcome(pool, row, wait)
        return json_response(store.render_command(row), status=200 if row["status"] in FINAL_STATUSES else 202)
    return json_response(store.render_command(row), status=202 if created else 200)


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
    try:
        command_id = UUID(request.match_info["commandId"])
    except ValueError:
        raise Problem(404, "Command not found", "no command has this id") from None
    async with request.app[POOL].acquire() as conn:
        row = await store.get_command(conn, command_id)
    if row is None:
        raise Problem(404, "Command not found", f"no command {command_id}")
    return json_response(store.render_command(row))


async def list_commands(request: web.Request) -> web.Response:
    """Newest first, filtered by charger and status."""
    query = parse_query(request, ListQuery)
    after = decode_cursor(query.cursor) if query.cursor else None
    if after is not None:
        try:
            after = (after[0], UUID(after[1]))
        except ValueError:
            raise Problem(400, "Invalid cursor", "the cursor is not one this API issued",
                          errors=[{"loc": ["query", "cursor"], "msg": "invalid cursor"}]) from None
    async with request.app[POOL].acquire() as conn:
        rows = await store.list_commands(conn, charge_point_id=query.chargePointId, status=query.status,
                                         limit=query.limit, after=after)
    return json_response(page(rows, query.limit, store.render_command, lambda r: (r["created_at"], r["command_id"])))


async def _dispatcher_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    # A fresh connection per request: a pooled one the gateway already closed would fail after
    # the request left, which reads as "outcome unknown" and would cost the command.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        gateway = GatewayClient(
            session, base_url=settings.gateway_base_url, timeout_seconds=settings.gateway_timeout_seconds,
            api_key=settings.gateway_api_key.get_secret_value() if settings.gateway_api_key else None,
        )
        dispatcher = Dispatcher(pool=app[POOL], gateway=gateway, gateway_timeout_seconds=settings.gateway_timeout_seconds)
        app[DISPATCHER] = dispatcher
        await dispatcher.start()
        app[CONSUMERS].append(dispatcher)  # /readyz reports it with the consumers
        yield
        await dispatcher.stop()


def setup(app: web.Application) -> None:
    app.router.add_post("/v1/commands", create_command)
    app.router.add_get("/v1/commands", list_commands)
    app.router.add_get("/v1/commands/{commandId}", get_command)
    add_outbox_relay(app, SCHEMA)
    app.cleanup_ctx.append(_dispatcher_ctx)
    # each commit of the dispatch consumer hands the commands that became due to this process's dispatcher at once
    add_consumer(app, COMMANDS_DISPATCH, SCHEMA, bind=lambda app: (
        consumers.dispatch_requested(app[DISPATCHER]), app[DISPATCHER].committed))
    add_consumer(app, COMMANDS_ACKS, SCHEMA, consumers.command_acked)
