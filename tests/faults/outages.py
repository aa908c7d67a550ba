"""Stopping and starting the machine's real RabbitMQ and Postgres, and waiting for an app to be
ready again. These affect every user of the machine: outages are kept short and always undone."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg

from tests.support import Api, eventually


async def run(*command: str, timeout: float = 120) -> str:
    """Run a command without blocking the event loop (the load keeps going meanwhile)."""
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode == 0, f"{' '.join(command)} failed: {output.decode()}"
    return output.decode()


async def rabbitmq(action: str) -> None:
    """`stop_app` or `start_app` on the local node."""
    await run("rabbitmqctl", action)


async def postgres(action: str) -> None:
    """`stop`, `start` or `restart` the local cluster."""
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
    await run("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action)


async def broker_answers(amqp_url: str) -> None:
    await _answers(lambda: aio_pika.connect(amqp_url, timeout=2))


async def database_answers(database_url: str) -> None:
    await _answers(lambda: asyncpg.connect(database_url, timeout=2))


async def _answers(connect: Callable[[], Awaitable[Any]]) -> None:
    """Wait until a connection made with `connect` succeeds (then close it)."""

    async def probe() -> bool:
        try:
            connection = await connect()
        except Exception:
            return False
        await connection.close()
        return True

    await eventually(probe, timeout=60, interval=0.2)


async def readiness(api: Api, wanted: int) -> dict | None:
    status, body = await api.anonymous("GET", "/readyz")
    return body if status == wanted else None


async def ready_again(api: Api) -> dict:
    """Poll /readyz until 200: the app reconnected everything it needs."""
    return await eventually(lambda: readiness(api, 200), timeout=90, interval=0.2)


async def at_least(value: int, minimum: int) -> bool:
    return value >= minimum


@contextlib.asynccontextmanager
async def under_load(api: Api, load, *, accepted_before: int = 80) -> AsyncIterator[None]:
    """Chargers keep sending while the body injects a fault. Enters once `accepted_before` events
    were accepted; on leaving, waits for the app to be ready and the load to finish."""
    sending = asyncio.create_task(load.run(api, concurrency=8, pause=0.1))
    try:
        await eventually(lambda: at_least(len(load.outcome.accepted), accepted_before))
        yield
        await ready_again(api)
        await sending
    finally:
        if not sending.done():
            sending.cancel()
        await ready_again(api)
