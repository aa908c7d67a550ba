"""Wiring a process: one aiohttp app holding one database pool and one broker connection,
the routes, consumers and outbox relays of one or several services, and the operational routes.
`cpms run all` passes every service, `cpms run <name>` one: same code, other wiring."""
from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import asyncpg
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

from shared import db, jsonutil, metrics, operators, workers
from shared.broker import Broker
from shared.config import CommonSettings
from shared.consumer import Consumer
from shared.docs_page import docs_asset, docs_page
from shared.access import access_middleware, routes_of
from shared.domain import AuditRecorded
from shared.http import ACCESS_LOG, BODY_LIMIT, Problem, json_response, metrics_middleware, problem_middleware
from shared.notices import AppliedNotices
from shared.openapi import TEXT, Body, Fragment, Liveness, Operation, Readiness, ResponseModel, build_document
from shared.outbox import OutboxRelay, enqueue_domain
from shared.service import Consumes, Relay, ServiceSpec, Task
from shared.startup import EXIT_REFUSED, DependencyRefused, wait_for
from shared.topology import Queue

log = logging.getLogger(__name__)


SETTINGS = web.AppKey("settings", CommonSettings)
POOL = web.AppKey("pool", asyncpg.Pool)
BROKER = web.AppKey("broker", Broker)
CONSUMERS = web.AppKey("consumers", list)
RELAYS = web.AppKey("relays", dict)
DEPTHS_READ_AT = web.AppKey("depths_read_at", list)
OPENAPI = web.AppKey("openapi", bytes)
PUBLIC_OPENAPI = web.AppKey("public_openapi", bytes)
NOTICES = web.AppKey("notices", AppliedNotices)
SPOOLS_EVENTS = web.AppKey("spools_events", bool)  # a service here can hold events while the broker is away
IDENTITY_SCHEMA = web.AppKey("identity_schema", str)
STARTED = web.AppKey("started", asyncio.Event)  # database, broker, relays, tasks and consumers are up
WAITING = web.AppKey("waiting", asyncio.Event)  # a dependency did not answer: start-up goes on in the background
# What to do when start-up fails after the process began listening (`cpms run` stops with this exit code).
ON_FATAL = web.AppKey("on_fatal", Callable[[int], None])


def create_app(settings: CommonSettings, services: list[ServiceSpec], *, public: list[ServiceSpec] | None = None,
               consumers: bool = True) -> web.Application:
    """One process serving `services`: every route from their descriptions (and the operational
    ones), their relays, tasks and consumers as cleanup contexts, in the order ServiceSpec fixes.
    `public`: the services of the whole public API (default `services`), described at
    `/openapi.json?scope=public`, so an edge in front of several processes describes them all.
    `consumers=False`: none of their consumers (an HTTP worker beside a consumers worker)."""
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[
            metrics_middleware,
            *(middleware for service in services for middleware in service.middlewares),
            problem_middleware,
            _started_middleware,
            access_middleware(gateway_key=settings.api_key.get_secret_value(), admin_token=settings.admin_token.get_secret_value(),
                              routes=routes_of(services), lookup=_operator_of, audit=_audit),
        ],
    )
    app[SETTINGS] = settings
    # Whose copy of the operators this process reads: ingest's own table where ingest runs here.
    app[IDENTITY_SCHEMA] = next((s.schema for s in services if s.schema == "ingest"), services[0].schema)
    app[ON_FATAL] = lambda code: None  # an embedding (the tests) decides itself; `cpms run` exits
    app[BODY_LIMIT] = settings.max_body_bytes
    app[ACCESS_LOG] = settings.access_log
    app[CONSUMERS] = []
    app[RELAYS] = {}
    app[DEPTHS_READ_AT] = [0.0]
    app[SPOOLS_EVENTS] = any(s.takes_gateway_events for s in services)
    fragments = [s.api for s in services] + [OPERATIONS]
    app[OPENAPI] = jsonutil.dumps(build_document(fragments))
    app[PUBLIC_OPENAPI] = jsonutil.dumps(build_document([s.api for s in public] + [OPERATIONS])) if public else app[OPENAPI]
    for fragment in fragments:
        for operation in fragment.operations:
            app.router.add_route(operation.method, operation.path, operation.handler)
    contexts: list[Task] = [_database_ctx(services), _broker_ctx]
    if any(s.waits_for_copies for s in services):
        contexts.append(_notices_ctx)
    for service in services:
        contexts.extend(_relay_ctx(service.schema, relay) for relay in service.relays)
        contexts.extend(service.tasks)
        if consumers:
            contexts.extend(_consumer_ctx(service.schema, consumes) for consumes in service.consumers)
    app[STARTED] = asyncio.Event()
    app.cleanup_ctx.append(_dependencies_ctx(contexts))
    return app


async def _operator_of(request: web.Request, token: str) -> tuple[str, str] | None:
    async with request.app[POOL].acquire() as conn:
        return await operators.operator_of(conn, request.app[IDENTITY_SCHEMA], token)


async def _audit(request: web.Request, schema: str, entry: AuditRecorded) -> None:
    async with unit_of_work(request.app, schema) as conn:
        await enqueue_domain(conn, schema, entry)


def _dependencies_ctx(contexts: list[Task]):
    """Start the database, the broker, then relays, tasks and consumers, in that order. While every
    dependency answers this finishes before the process listens; once one does not, the process
    listens anyway (/livez 200, /readyz 503, every other route 503) and goes on starting in the
    background until it can. A dependency that refuses our credentials stops the process."""

    async def dependencies(app: web.Application) -> AsyncIterator[None]:
        waiting = app[WAITING] = asyncio.Event()
        stack = contextlib.AsyncExitStack()

        async def start() -> None:
            for context in contexts:
                await stack.enter_async_context(contextlib.asynccontextmanager(context)(app))
            app[STARTED].set()

        starting = asyncio.create_task(start(), name="cpms:start-up")
        first_wait = asyncio.create_task(waiting.wait())
        await asyncio.wait({starting, first_wait}, return_when=asyncio.FIRST_COMPLETED)
        first_wait.cancel()
        if starting.done():
            starting.result()  # a refusal (or a bug) fails the start-up here, before the process listens
        else:
            starting.add_done_callback(lambda task: _started_late(app, task))
        try:
            yield
        finally:
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await starting
            await stack.aclose()

    return dependencies


def _started_late(app: web.Application, task: asyncio.Task) -> None:
    if task.cancelled() or task.exception() is None:
        return
    exc = task.exception()
    log.error(str(exc) if isinstance(exc, DependencyRefused) else f"start-up failed: {exc!r}")
    app[ON_FATAL](EXIT_REFUSED)


@web.middleware
async def _started_middleware(request: web.Request, handler):
    if not request.app[STARTED].is_set() and not _is_operational(request.path):
        raise Problem(503, "Starting", "the service is still connecting to its database and broker; retry later",
                      headers={"Retry-After": "1"})
    return await handler(request)


def _is_operational(path: str) -> bool:
    return path in _OPERATIONAL_PATHS or path.startswith("/docs/")


def _database_ctx(services: list[ServiceSpec]):
    async def database(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        await wait_for("database", settings.database_url, lambda: db.ensure_database(settings.database_url),
                       on_waiting=app[WAITING].set)
        pool = await db.create_pool(settings.database_url, max_size=settings.db_pool_max_size)
        for service in services:
            await db.migrate(pool, service.schema, service.migrations)
        app[POOL] = pool
        yield
        await pool.close()

    return database


async def _broker_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    broker = Broker(
        settings.amqp_url, settings.amqp_prefix,
        publish_timeout=settings.publish_timeout_seconds,
    )
    await wait_for("broker", settings.amqp_url, broker.connect, on_waiting=app[WAITING].set)
    app[BROKER] = broker
    yield
    await broker.close()


def _relay_ctx(schema: str, relay: Relay):
    async def relay_ctx(app: web.Application) -> AsyncIterator[None]:
        outbox = OutboxRelay(broker=app[BROKER], pool=app[POOL], schema=schema, table=relay.table, on_backlog=relay.on_backlog,
                             poll_seconds=app[SETTINGS].outbox_poll_seconds)
        app[RELAYS][(schema, relay.table)] = outbox
        await outbox.start()
        yield
        await outbox.stop()

    return relay_ctx


def outbox_relay(app: web.Application, schema: str, table: str = "outbox") -> OutboxRelay:
    return app[RELAYS][(schema, table)]


@contextlib.asynccontextmanager
async def unit_of_work(app: web.Application, schema: str, table: str = "outbox") -> AsyncIterator[asyncpg.Connection]:
    """One transaction of `schema`'s; once it has committed, the relay of its outbox (or `table`)
    publishes what it wrote at once. A rolled-back transaction wakes nothing."""
    async with app[POOL].acquire() as conn:
        async with conn.transaction():
            yield conn
    outbox_relay(app, schema, table).wake()


async def _notices_ctx(app: web.Application) -> AsyncIterator[None]:
    notices = app[NOTICES] = AppliedNotices(app[BROKER], timeout=app[SETTINGS].read_your_writes_timeout_seconds)
    await notices.start()
    yield
    await notices.stop()


async def copies_applied(app: web.Application, schema: str, message_ids: list[str], *, keeper: Queue | tuple[Queue, ...]) -> None:
    """Publish `schema`'s outbox now and wait until the consumers of `keeper` (of each keeper) have
    applied these messages."""
    keepers = keeper if isinstance(keeper, tuple) else (keeper,)
    waits = [(app[NOTICES].expect(message_ids, k), k) for k in keepers]
    outbox_relay(app, schema).wake()
    await asyncio.gather(*(app[NOTICES].applied(futures, k) for futures, k in waits))


def entity_before(
    parameter: str, read: Callable[[asyncpg.Connection, Any], Awaitable[Mapping[str, Any] | None]], model: type[ResponseModel],
    *, key: Callable[[str], Any] = str,
) -> Callable[[web.Request], Awaitable[dict | None]]:
    """An operation's `before` for the audit trail: the entity its path parameter names, read by
    `read(conn, key(value))` and shown as `model` answers it; None where there is none (or the
    value cannot name one)."""

    async def before(request: web.Request) -> dict | None:
        try:
            wanted = key(request.match_info[parameter])
        except ValueError:
            return None
        async with request.app[POOL].acquire() as conn:
            row = await read(conn, wanted)
        return model.from_row(row) if row else None

    return before


def _consumer_ctx(schema: str, consumes: Consumes):
    async def consumer_ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        hooks = []
        if consumes.wakes_outbox:
            relay = outbox_relay(app, schema)
            hooks.append(lambda _: relay.wake())
        if consumes.after_commit is not None:
            hooks.append(consumes.after_commit(app))
        handler = functools.partial(consumes.handler, settings=settings) if consumes.takes_settings else consumes.handler
        consumer = Consumer(
            broker=app[BROKER], pool=app[POOL], queue=consumes.queue, schema=schema, handler=handler,
            prefetch=settings.consumer_prefetch, batch_size=settings.consumer_batch_size,
            after_commit=(lambda result: [hook(result) for hook in hooks]) if hooks else None,
            inbox=consumes.inbox, repeats=consumes.repeats, linger=settings.consumer_linger_seconds,
        )
        await consumer.start()
        app[CONSUMERS].append(consumer)
        yield
        await consumer.stop()

    return consumer_ctx


async def livez(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def _database_ok(pool: asyncpg.Pool) -> bool:
    try:
        async with asyncio.timeout(2):
            async with pool.acquire() as conn:
                await conn.fetchval("SELECT 1")
        return True
    except Exception:
        return False


async def readyz(request: web.Request) -> web.Response:
    """200 when the process has started, the database and broker answer and every consumer and
    relay runs; else 503 naming what failed. A process that takes the gateway's events can hold
    them in its spool while the broker is away: it answers 200 with `degraded`, so a load balancer
    keeps the gateway on it."""
    app = request.app
    checks = {
        "database": POOL in app and await _database_ok(app[POOL]),
        "broker": BROKER in app and app[BROKER].is_connected,
        # Until start-up is over some consumers and relays do not exist yet: they are not running.
        "consumers": app[STARTED].is_set() and all(c.is_running for c in app[CONSUMERS]),
        "outbox": app[STARTED].is_set() and all(r.is_running for r in app[RELAYS].values()),
    }
    for name, ok in checks.items():
        metrics.DEPENDENCY_UP.labels(name).set(1 if ok else 0)
    failing = [k for k, ok in checks.items() if not ok]
    body: dict = {"status": "ok", "checks": {k: "ok" if v else "failing" for k, v in checks.items()}}
    if not failing:
        return json_response(body)
    # Degraded, not down, once started: the spool takes the gateway's events while the broker is
    # away. A process still starting takes no events at all, so it is down until it has started.
    if app.get(SPOOLS_EVENTS) and app[STARTED].is_set() and checks["database"] and not checks["broker"]:
        body.update(status="degraded", degraded=failing)
        return json_response(body)
    body.update(status="unavailable", failing=failing)
    return json_response(body, status=503)


async def metrics_endpoint(request: web.Request) -> web.Response:
    app = request.app
    if POOL in app:
        pool = app[POOL]
        metrics.DB_POOL_SIZE.set(pool.get_size())
        metrics.DB_POOL_IN_USE.set(pool.get_size() - pool.get_idle_size())
    # an app with a broker reads its queues' depths (the gateway's app has neither)
    if BROKER in app and time.monotonic() - app[DEPTHS_READ_AT][0] > 5:  # a scrape must not hammer the broker
        app[DEPTHS_READ_AT][0] = time.monotonic()
        try:
            async with asyncio.timeout(2):  # a silent broker must not hold up the scrape
                depths = await app[BROKER].queue_depths()
            for name, depth in depths.items():
                metrics.QUEUE_DEPTH.labels(name).set(depth)
        except Exception as exc:
            log.warning("could not read queue depths", extra={"error": repr(exc)})
    return web.Response(body=generate_latest(_registry()), headers={"Content-Type": CONTENT_TYPE_LATEST})


def _registry() -> CollectorRegistry:
    """This process's metrics; under several workers, every worker's (their files, aggregated)."""
    if workers.METRICS_DIR not in os.environ:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


async def openapi_document(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 description of the operations this process serves; with `?scope=public`,
    of the whole public API (what the edge in front of every service serves)."""
    public = request.query.get("scope") == "public"
    return web.Response(body=request.app[PUBLIC_OPENAPI if public else OPENAPI], content_type="application/json")


_READINESS = {200: Readiness, 503: Readiness}
OPERATIONS = Fragment("operations", (
    Operation("GET", "/livez", livez, "200 while the process runs", "none", {200: Liveness}),
    Operation("GET", "/readyz", readyz, "Whether the database, the broker, the consumers and the relays work", "none", _READINESS),
    Operation("GET", "/healthz", readyz, "Alias of /readyz", "none", _READINESS),
    Operation("GET", "/metrics", metrics_endpoint, "Prometheus text exposition", "none", {200: TEXT}),
    Operation("GET", "/openapi.json", openapi_document, "This document", "none", {200: Body({"type": "object"})}),
    Operation("GET", "/docs", docs_page, "This document, browsable (Swagger UI)", "none",
              {200: Body({"type": "string"}, media_type="text/html")}),
    Operation("GET", "/docs/{asset}", docs_asset, "The browser's own files", "none", {200: (
        Body({"type": "string"}, media_type="text/css"), Body({"type": "string"}, media_type="application/javascript"))}),
), "Health, metrics and this description; no key needed")

_OPERATIONAL_PATHS = frozenset(operation.path for operation in OPERATIONS.operations)
