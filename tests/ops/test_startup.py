"""Start-up that talks: with Postgres or RabbitMQ unreachable a process logs one line per attempt
naming the dependency by host:port (never a password), serves /livez 200 and /readyz 503 (every
other route a 503 problem), never exits, and is ready by itself once the dependency answers. A
dependency that refuses our credentials is one clear error line and exit code 2."""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
import uuid
from urllib.parse import urlsplit


from shared import db
from tests.conftest import PG_URL
from tests.support import TcpProxy, eventually

WAIT_LOGGER = "shared.startup"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _waiting_lines(caplog, dependency: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == WAIT_LOGGER and getattr(r, "dependency", None) == dependency
            and r.levelno == logging.WARNING]


def _at_least(caplog, dependency: str, count: int):
    async def probe() -> list[logging.LogRecord] | None:
        lines = _waiting_lines(caplog, dependency)
        return lines if len(lines) >= count else None

    return probe


async def _ready(api) -> bool:
    status, body = await api.anonymous("GET", "/readyz")
    return status == 200 and body["status"] == "ok"


async def test_a_process_waits_for_postgres_talking_and_is_ready_once_it_answers(make_api, settings, caplog):
    caplog.set_level(logging.INFO, logger=WAIT_LOGGER)
    pg = urlsplit(settings.database_url)
    proxy = TcpProxy(pg.hostname, pg.port or 5432)
    port = _free_port()  # nothing listens there yet: the database is "down"
    name = f"cpms_startup_{uuid.uuid4().hex[:8]}"
    try:
        api = await make_api(database_url=f"postgresql://postgres:pg-password-never-logged@127.0.0.1:{port}/{name}")
        assert await api.anonymous("GET", "/livez") == (200, {"status": "ok"})
        status, body = await api.anonymous("GET", "/readyz")
        assert status == 503 and "database" in body["failing"], body
        status, problem = await api.admin("GET", "/v1/sessions")
        assert status == 503 and problem["title"] == "Starting", problem

        lines = await eventually(_at_least(caplog, "database", 2))
        assert [r.attempt for r in lines[:2]] == [1, 2]
        assert all(r.address == f"127.0.0.1:{port}" and f"127.0.0.1:{port}" in r.getMessage() for r in lines)
        assert "pg-password-never-logged" not in caplog.text

        await proxy.start(port=port)  # Postgres is back at the address the process was given
        await eventually(lambda: _ready(api), timeout=30)
        status, body = await api.admin("GET", "/v1/sessions")
        assert (status, body.get("items")) == (200, []), body
        assert any(r.getMessage() == f"the database at 127.0.0.1:{port} answers" for r in caplog.records)
    finally:
        await proxy.close()
        await db.drop_database(f"{PG_URL}/{name}")


async def test_a_process_waits_for_rabbitmq_talking_and_is_ready_once_it_answers(make_api, settings, caplog):
    caplog.set_level(logging.INFO, logger=WAIT_LOGGER)
    amqp = urlsplit(settings.amqp_url)
    proxy = TcpProxy(amqp.hostname, amqp.port or 5672)
    port = _free_port()
    try:
        api = await make_api(amqp_url=f"amqp://{amqp.username}:{amqp.password}@127.0.0.1:{port}/")
        status, body = await api.anonymous("GET", "/readyz")
        assert status == 503 and "broker" in body["failing"], body
        await eventually(_at_least(caplog, "broker", 1))
        assert f"{amqp.username}:{amqp.password}@" not in caplog.text

        await proxy.start(port=port)
        await eventually(lambda: _ready(api), timeout=30)
    finally:
        await proxy.close()


async def _run_until_exit(env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", "run", "all", env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError("the process kept running although a dependency refused it") from None
    return process.returncode, stderr.decode()


async def test_a_role_postgres_does_not_know_is_one_error_line_and_exit_code_2(settings):
    code, stderr = await _run_until_exit({
        "CPMS_DATABASE_URL": "postgresql://no_such_role_here:pw-not-logged@127.0.0.1:5432/cpms_nobody",
        "CPMS_LISTEN_ADDR": f"127.0.0.1:{_free_port()}", "CPMS_AMQP_PREFIX": f"startup-{uuid.uuid4().hex[:6]}",
    })
    assert code == 2, stderr
    errors = [line for line in stderr.splitlines() if '"level": "ERROR"' in line or '"level":"ERROR"' in line]
    assert len(errors) == 1 and "the database at 127.0.0.1:5432 refused the connection" in errors[0], stderr
    assert "Traceback" not in stderr and "pw-not-logged" not in stderr


async def test_a_wrong_rabbitmq_password_is_one_error_line_and_exit_code_2(settings):
    code, stderr = await _run_until_exit({
        "CPMS_DATABASE_URL": settings.database_url,
        "CPMS_AMQP_URL": "amqp://guest:wrong-password@127.0.0.1:5672/",
        "CPMS_LISTEN_ADDR": f"127.0.0.1:{_free_port()}", "CPMS_AMQP_PREFIX": f"startup-{uuid.uuid4().hex[:6]}",
    })
    assert code == 2, stderr
    assert "the broker at 127.0.0.1:5672 refused the connection" in stderr, stderr
    assert "Traceback" not in stderr and "wrong-password" not in stderr
