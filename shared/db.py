"""The asyncpg pool and the migration runner every service uses for its own schema."""
from __future__ import annotations

import logging
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson
from tenacity import AsyncRetrying, RetryCallState, RetryError, wait_exponential_jitter

# The one backoff of every retry after a dependency's failure: exponential from 0.1 s, jittered, at most 5 s apart.
TRANSIENT_BACKOFF = wait_exponential_jitter(initial=0.1, max=5)


async def until_it_works(step: Callable[[], Awaitable[T]], *, stopping: Callable[[], bool],
                         on_failure: Callable[[BaseException], Awaitable[None]]) -> T | None:
    """Run a background loop's step until it succeeds, with TRANSIENT_BACKOFF between failures;
    None once `stopping()` says the loop is over."""
    async def failed(state: RetryCallState) -> None:
        await on_failure(state.outcome.exception())

    try:
        async for attempt in AsyncRetrying(wait=TRANSIENT_BACKOFF, stop=lambda _: stopping(), reraise=False, before_sleep=failed):
            with attempt:
                return await step()
    except RetryError:
        return None
    return None

log = logging.getLogger(__name__)
T = TypeVar("T")

SHARED_MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_LOCK = 0x43504D53  # "CPMS": one advisory lock for every migration run in the database


def is_connection_error(exc: BaseException) -> bool:
    """True for failures of the database itself (down, restarting, connection lost)."""
    return isinstance(
        exc,
        OSError
        | ConnectionError
        | asyncpg.PostgresConnectionError
        | asyncpg.InterfaceError
        | asyncpg.CannotConnectNowError
        | asyncpg.AdminShutdownError
        | asyncpg.ConnectionDoesNotExistError,
    ) or (isinstance(exc, TimeoutError))


class Filters:
    """The conditions of a list query and their arguments, numbered as they are added:
    `filters.add_given("s.status = {}", status)` for each filter, then `filters.where`."""

    def __init__(self) -> None:
        self.conditions: list[str] = []
        self.args: list[Any] = []

    def arg(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def add(self, condition: str, *values: Any) -> None:
        self.conditions.append(condition.format(*(self.arg(value) for value in values)))

    def add_given(self, condition: str, value: Any) -> None:
        """`add` a filter that was given: a value that is not None."""
        if value is not None:
            self.add(condition, value)

    def add_equal(self, **columns: Any) -> None:
        """`column = value` for each column whose value was given."""
        for column, value in columns.items():
            self.add_given(f"{column} = {{}}", value)

    @property
    def where(self) -> str:
        return " AND ".join(self.conditions) or "true"


# Rows a server-side cursor fetches per round trip: an export of any size holds one such chunk.
CURSOR_CHUNK_ROWS = 500


def every_row(conn: asyncpg.Connection, sql: str, args: Sequence[Any]) -> AsyncIterable[asyncpg.Record]:
    """Every row of `sql`, read through a server-side cursor; iterate inside a transaction (the
    cursor needs one)."""
    return conn.cursor(sql, *args, prefetch=CURSOR_CHUNK_ROWS)


def substring_pattern(text: str) -> str:
    """A LIKE pattern that matches `text` anywhere, its `%`, `_` and `\\` taken as themselves."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def replace_when(condition: str, columns: Sequence[str], table: str = "s") -> str:
    """An upsert's SET for `columns`: the new row's values when `condition` holds, else the stored
    ones of `table` (the alias of the upserted table)."""
    return ", ".join(f"{col} = CASE WHEN {condition} THEN EXCLUDED.{col} ELSE {table}.{col} END" for col in columns)


def rows_affected(status: str) -> int:
    """The row count of a command's status tag, e.g. 3 for "INSERT 0 3" or "UPDATE 3"."""
    return int(status.rsplit(" ", 1)[-1])


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Nothing to reset on release: the services keep no session state (no SET, LISTEN, cursors or
    advisory locks outside a transaction; migrations unlock theirs), and asyncpg still rolls back
    an open transaction. The default reset costs a round trip of four statements per acquire."""


async def create_pool(database_url: str, *, max_size: int = 10) -> asyncpg.Pool:
    """A pool that opens connections on demand, so it can be made while Postgres is still down."""
    return await asyncpg.create_pool(
        database_url, min_size=0, max_size=max_size, init=_init_connection, reset=_keep_session,
        command_timeout=30, max_inactive_connection_lifetime=60,
    )


async def connect(database_url: str) -> asyncpg.Connection:
    """One connection with the pool's codecs, for command-line work."""
    conn = await asyncpg.connect(database_url)
    await _init_connection(conn)
    return conn


def _server_of(database_url: str) -> tuple[str, str]:
    """(the database's name, the URL of the server's `postgres` database, to create or drop it from)."""
    parts = urlsplit(database_url)
    return parts.path.lstrip("/"), urlunsplit(parts._replace(path="/postgres"))


async def ensure_database(database_url: str) -> None:
    """Create the database named in the URL when it does not exist yet."""
    name, admin_url = _server_of(database_url)
    conn = await asyncpg.connect(admin_url)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            except asyncpg.DuplicateDatabaseError:
                pass
    finally:
        await conn.close()


async def drop_database(database_url: str) -> None:
    """Drop the database named in the URL, with whatever is still connected to it (the test
    suite's and the benchmarks' own databases)."""
    name, admin_url = _server_of(database_url)
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def migration_files(service_dir: Path) -> list[Path]:
    """The shared messaging tables first, then the service's own files in NNN order."""
    return sorted(SHARED_MIGRATIONS.glob("*.sql")) + sorted(service_dir.glob("*.sql"))


async def migrate(pool: asyncpg.Pool, schema: str, migrations_dir: Path) -> list[str]:
    """Apply the not yet applied migrations to `schema`; returns their names. Safe to run twice,
    and from several processes at once (they take turns on an advisory lock)."""
    applied: list[str] = []
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        try:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            await conn.execute(
                f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations ('
                " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["name"] for r in await conn.fetch(f'SELECT name FROM "{schema}".schema_migrations')}
            for path in migration_files(migrations_dir):
                if path.name in done:
                    continue
                async with conn.transaction():
                    await conn.execute(f'SET LOCAL search_path TO "{schema}"')
                    await conn.execute(path.read_text())
                    await conn.execute(f'INSERT INTO "{schema}".schema_migrations (name) VALUES ($1)', path.name)
                applied.append(path.name)
                log.info("migration applied", extra={"schema": schema, "migration": path.name})
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
    return applied
