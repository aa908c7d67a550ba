"""A service described once, as data: its schema and migrations, its routes (each with its handler,
request and response models: `shared.openapi.Operation`), the queues it consumes, the outbox-shaped
tables it relays, its background tasks, and the commands it adds to `cpms`. `shared.app.create_app` wires a process from these
descriptions, and builds the OpenAPI document from the same routes, so nothing is listed twice."""
from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web

from shared.config import CommonSettings
from shared.consumer import BatchHandler
from shared.openapi import Fragment
from shared.topology import Queue

Task = Callable[[web.Application], AsyncIterator[None]]  # an aiohttp cleanup context: start, yield, stop


@dataclass(frozen=True)
class Relay:
    """An outbox-shaped table of the service's schema, published by a relay in this process."""

    table: str = "outbox"
    on_backlog: Callable[[int], None] | None = None  # hears the rows waiting (default: the outbox gauge)


@dataclass(frozen=True)
class Consumes:
    """A queue the service consumes. `handler(conn, messages)` applies a batch in one transaction;
    then, after the commit, `wakes_outbox` publishes the schema's outbox at once and
    `after_commit(app)(result)` hands on what the handler returned. With `takes_settings` the
    handler is called as `handler(conn, messages, settings)` (the process's settings, for a policy
    it applies). `inbox` and `repeats`: see `shared.consumer.Consumer`."""

    queue: Queue
    handler: BatchHandler
    wakes_outbox: bool = False
    after_commit: Callable[[web.Application], Callable[[Any], None]] | None = None
    inbox: bool = True
    repeats: bool = False
    takes_settings: bool = False


@dataclass(frozen=True)
class Command:
    """A command the service adds to `cpms`, run against its migrated database: `words` are what
    follows `cpms` ("seed-charger", or a group and its action: "operator", "create"), `arguments`
    adds its options to the parser, `check(args)` refuses bad ones before anything is touched, and
    `run(conn, args)` does the work and returns what to print. A ValueError or a Conflict either
    raises is the command's error: one line, exit code 2. `stdout_alone`: stdout carries what `run`
    returns and nothing else (a token to capture), the migrations report on stderr."""

    words: tuple[str, ...]
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[asyncpg.Connection, argparse.Namespace], Awaitable[str]]
    check: Callable[[argparse.Namespace], None] | None = None
    group_help: str = ""  # of the group, for a command of two words
    stdout_alone: bool = False


@dataclass(frozen=True)
class ServiceSpec:
    """Everything a service brings to a process. Start-up order, per service: its relays, its
    tasks, its consumers (so a consumer finds the relay it wakes and the resources it uses)."""

    name: str
    schema: str
    migrations: Path
    settings: type[CommonSettings]  # what `cpms run <name>` reads
    api: Fragment
    consumers: tuple[Consumes, ...] = ()
    relays: tuple[Relay, ...] = (Relay(),)
    tasks: tuple[Task, ...] = ()
    commands: tuple[Command, ...] = ()
    # aiohttp middlewares of its own, outside problem+json: a protocol that answers its errors its
    # own way (OCPI's envelope) sets `shared.http.OWN_ERRORS` on its requests.
    middlewares: tuple[Callable[..., Any], ...] = ()
    # The size of the memory its workers share (`shared.workers.shared_memory`), from its settings.
    shared_memory: Callable[[Any], int] | None = None
    takes_gateway_events: bool = False  # can hold events in a spool: ready (degraded) while the broker is away
    waits_for_copies: bool = False  # its writes answer once the copies other services keep are applied
