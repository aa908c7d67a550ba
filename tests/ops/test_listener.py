"""The listener of `cpms run`, as a real process: its accept queue holds CPMS_LISTEN_BACKLOG
connections (the kernel caps it at net.core.somaxconn, and the process says so at start when it
does), and an idle connection stays open for the gateway's next request until
CPMS_KEEPALIVE_TIMEOUT_SECONDS, when the server closes it."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tests.conftest import delete_broker_objects
from tests.ops.test_startup import _free_port
from tests.support import eventually

SOMAXCONN = int(open("/proc/sys/net/core/somaxconn").read())


@asynccontextmanager
async def cpms_run(settings, **env: str) -> AsyncIterator[tuple[int, asyncio.subprocess.Process]]:
    """`cpms run all` on a free port with these settings; (port, process) once it listens."""
    port, prefix = _free_port(), f"listener-{uuid.uuid4().hex[:6]}"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", "run", "all",
        env={**os.environ, "CPMS_DATABASE_URL": settings.database_url, "CPMS_AMQP_PREFIX": prefix,
             "CPMS_LISTEN_ADDR": f"127.0.0.1:{port}", "CPMS_LOG_LEVEL": "WARNING", **env},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        await eventually(lambda: _answers(port), timeout=60)
        yield port, process
    finally:
        process.send_signal(signal.SIGTERM)
        await process.communicate()
        await delete_broker_objects(prefix)


async def _answers(port: int) -> bool:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    return True


async def _line_naming(stream: asyncio.StreamReader, word: str) -> dict:
    while line := await stream.readline():
        if word in line.decode():
            return json.loads(line)
    raise AssertionError(f"no log line names {word}")


def accept_queue_of(port: int) -> int:
    """The accept queue of the socket listening on `port`, as the kernel holds it (`ss`: Send-Q)."""
    line = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout.split()
    return int(line[2])


async def get_livez(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    """One HTTP/1.1 request on an open connection; the status line of its answer."""
    writer.write(b"GET /livez HTTP/1.1\r\nHost: cpms\r\n\r\n")
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    await reader.readexactly(length)
    return head.split(b"\r\n")[0]


async def test_the_accept_queue_is_the_setting_and_idle_connections_last_as_long_as_set(settings):
    async with cpms_run(settings, CPMS_LISTEN_BACKLOG="1000", CPMS_KEEPALIVE_TIMEOUT_SECONDS="2") as (port, _):
        assert accept_queue_of(port) == min(1000, SOMAXCONN)

        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await get_livez(reader, writer) == b"HTTP/1.1 200 OK"
        await asyncio.sleep(0.5)  # idle, as in a gateway's pool between two events
        assert await get_livez(reader, writer) == b"HTTP/1.1 200 OK"  # the same connection
        # Then, idle past the setting, the server closes it (the default would keep it 120 s).
        assert await asyncio.wait_for(reader.read(), timeout=30) == b""
        writer.close()


async def test_a_backlog_above_the_kernels_cap_is_capped_and_said_at_start(settings):
    async with cpms_run(settings, CPMS_LISTEN_BACKLOG=str(SOMAXCONN + 1)) as (port, process):
        assert accept_queue_of(port) == SOMAXCONN
        said = await asyncio.wait_for(_line_naming(process.stderr, "somaxconn"), timeout=30)
        assert said["level"] == "WARNING" and (said["listen_backlog"], said["somaxconn"]) == (SOMAXCONN + 1, SOMAXCONN), said


async def test_by_default_the_accept_queue_is_the_kernels_whole_cap(settings):
    async with cpms_run(settings) as (port, _):
        assert accept_queue_of(port) == min(4096, SOMAXCONN)
