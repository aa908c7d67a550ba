"""The sessions service as its own process, killed with SIGKILL while it applies a backlog of
charger events and started again: the broker redelivers what was not acked, the inbox absorbs
what was already committed, and the final state is exact."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.app import SETTINGS
from shared.topology import SESSIONS_CHARGER_EVENTS
from tests.faults.load import Load, verify_exactly_once
from tests.support import ADMIN_TOKEN, GATEWAY_KEY, Api, eventually

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parents[2]


class RemoteClient:
    """What `Api` needs of a test client, for a service running in another process."""

    def __init__(self, base_url: str, http: aiohttp.ClientSession) -> None:
        self.base_url, self.http = base_url, http

    def request(self, method: str, path: str, **kwargs):
        return self.http.request(method, self.base_url + path, **kwargs)


class SessionsProcess:
    """`python -m services.cli run sessions` on a free port, sharing a broker prefix with the test."""

    def __init__(self, settings, log: Path, batch_size: int) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.env = {
            **os.environ,
            "CPMS_DATABASE_URL": settings.database_url, "CPMS_AMQP_URL": settings.amqp_url,
            "CPMS_AMQP_PREFIX": settings.amqp_prefix, "CPMS_API_KEY": GATEWAY_KEY, "CPMS_ADMIN_TOKEN": ADMIN_TOKEN,
            "CPMS_SESSIONS_LISTEN_ADDR": f"127.0.0.1:{self.port}", "CPMS_LOG_LEVEL": "WARNING",
            "CPMS_OUTBOX_POLL_SECONDS": "0.2", "CPMS_CONSUMER_BATCH_SIZE": str(batch_size),
        }
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "services.cli", "run", "sessions", cwd=ROOT, env=self.env, stdout=out, stderr=out)

    async def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), 30)
        except TimeoutError:
            await self.kill()


async def test_sessions_killed_mid_batch_and_restarted_applies_every_event_once(make_api, connect_db, tmp_path):
    main = await make_api(services=["ingest", "billing"])
    pg = await connect_db(main)
    settings = main.client.server.app[SETTINGS]
    load = Load(chargers=100, samples=8)
    await load.prepare(main)
    await load.run(main, concurrency=16)  # the backlog waits in the sessions queue: nobody consumes it yet
    accepted = list(load.outcome.accepted)

    sessions = SessionsProcess(settings, tmp_path / "sessions.log", batch_size=8)
    async with aiohttp.ClientSession() as http:
        remote = Api(RemoteClient(sessions.url, http), database_url=settings.database_url)
        try:
            await sessions.start()

            async def applying() -> bool:
                try:
                    done = await pg.fetchval("SELECT count(*) FROM sessions.inbox WHERE message_id = ANY($1::text[])", accepted)
                except Exception:  # the process is still creating its tables
                    return False
                return done >= 200  # several batches in: the kill lands among them

            await eventually(applying, timeout=60, interval=0.002)
            await sessions.kill()
            applied_at_kill = await pg.fetchval("SELECT count(*) FROM sessions.inbox WHERE message_id = ANY($1::text[])", accepted)
            assert 0 < applied_at_kill < len(accepted), f"killed too late to be mid-backlog: {applied_at_kill}; log: {_tail(sessions.log)}"

            await sessions.start()
            await eventually(lambda: _ready(remote), timeout=60)
            figures = await verify_exactly_once(main, pg, load, sessions_api=remote)
            status, text = await remote.anonymous("GET", "/metrics")
            assert status == 200
        finally:
            await sessions.stop()

    queue = SESSIONS_CHARGER_EVENTS.name(settings.amqp_prefix)
    redelivered = _sample(text, "cpms_consumer_redeliveries_total", queue=queue)
    duplicates = _sample(text, "cpms_consumer_messages_total", queue=queue, result="duplicate")
    assert redelivered > 0  # the killed process held deliveries it never acked
    print(f"sessions killed after {applied_at_kill}/{len(accepted)} events; after restart: "
          f"{redelivered:.0f} redelivered, {duplicates:.0f} already applied; {figures}")


async def _ready(api: Api) -> bool:
    try:
        return (await api.anonymous("GET", "/readyz"))[0] == 200
    except aiohttp.ClientError:
        return False


def _sample(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def _tail(log: Path) -> str:
    return log.read_text()[-2000:] if log.exists() else ""
