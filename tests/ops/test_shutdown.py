"""Graceful shutdown of a real `cpms run all` process: SIGTERM under load finishes what is in
flight, exits 0, refuses or answers what comes after, and loses or repeats nothing that was
promised with a 202."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import aiohttp

from shared.jsonutil import format_ts
from tests.conftest import AMQP_URL, delete_broker_objects
from tests.support import ADMIN_TOKEN, GATEWAY_KEY, eventually, unique_id

PAIRS = 200
SHUTDOWN_TIMEOUT = 30  # services/cli.py run_app(shutdown_timeout=...)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Process:
    """`python -m services.cli run all` on its own port and broker prefix."""

    def __init__(self, database_url: str, gateway_url: str) -> None:
        self.port = _free_port()
        self.prefix = f"test-shutdown-{uuid.uuid4().hex[:8]}"
        self.env = {
            **os.environ,
            "CPMS_DATABASE_URL": database_url, "CPMS_AMQP_URL": AMQP_URL, "CPMS_AMQP_PREFIX": self.prefix,
            "CPMS_API_KEY": GATEWAY_KEY, "CPMS_ADMIN_TOKEN": ADMIN_TOKEN, "GATEWAY_BASE_URL": gateway_url,
            "CPMS_LISTEN_ADDR": f"127.0.0.1:{self.port}", "CPMS_LOG_LEVEL": "WARNING",
        }
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = tempfile.TemporaryFile()

    def output(self) -> str:
        """The process's log lines so far, for a failure message."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]

    async def start(self, http: aiohttp.ClientSession) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "services.cli", "run", "all"], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=self.log)

        async def ready() -> bool:
            assert self.proc.poll() is None, self.output()
            try:
                async with http.get(f"{self.url}/readyz") as response:
                    return response.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(ready, timeout=60, interval=0.2)

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    async def exit_code(self, timeout: float) -> int | None:
        try:
            return await asyncio.to_thread(self.proc.wait, timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@asynccontextmanager
async def running_process(database_url: str, gateway_url: str) -> AsyncIterator[tuple[Process, aiohttp.ClientSession]]:
    process = Process(database_url, gateway_url)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=SHUTDOWN_TIMEOUT + 15)) as http:
        try:
            yield process, http
        finally:
            process.kill()
            process.log.close()
            await delete_broker_objects(process.prefix)


async def _post_event(http: aiohttp.ClientSession, url: str, event: dict) -> str:
    """'accepted' (202), 'refused' (an HTTP answer other than 202, or no connection)."""
    try:
        async with http.post(f"{url}/v1/gateway/events", json=event, headers={"Authorization": f"Bearer {GATEWAY_KEY}"}) as response:
            await response.read()
            return "accepted" if response.status == 202 else "refused"
    except (aiohttp.ClientConnectionError, aiohttp.ServerDisconnectedError):
        return "refused"


async def test_sigterm_under_load_finishes_in_flight_work_and_loses_nothing(database_url, fake_gateway, pg):
    cp = unique_id("CP-term")
    start = datetime.now(UTC) - timedelta(hours=1)
    async with running_process(database_url, fake_gateway.url) as (process, http):
        await process.start(http)
        accepted: dict[str, int] = {}  # eventId -> transactionId

        async def pair(tx: int) -> None:
            ts = start + timedelta(seconds=tx)
            events = (
                {"type": "TransactionStarted", "chargePointId": cp, "connectorId": 1, "transactionId": tx,
                 "meterStartWh": 1000, "ts": format_ts(ts), "eventId": f"{cp}-start-{tx}"},
                {"type": "TransactionEnded", "chargePointId": cp, "transactionId": tx, "meterStopWh": 1000 + tx,
                 "ts": format_ts(ts + timedelta(seconds=30)), "eventId": f"{cp}-end-{tx}"},
            )
            for event in events:
                if await _post_event(http, process.url, event) == "accepted":
                    accepted[event["eventId"]] = tx

        load = [asyncio.create_task(pair(tx)) for tx in range(1, PAIRS + 1)]
        await eventually(lambda: _at_least(accepted, PAIRS // 2), timeout=60, interval=0.01)
        process.terminate()
        code = await process.exit_code(timeout=SHUTDOWN_TIMEOUT + 10)
        await asyncio.gather(*load)  # every request was answered or refused: none hangs (client timeout)
        assert code == 0, process.output()
        assert 0 < len(accepted) < 2 * PAIRS, "the signal should have come in the middle of the load"
        late = await _post_event(http, process.url, {"type": "ChargerHeartbeat", "chargePointId": cp})
        assert late == "refused"

        # Restarted, the process applies whatever was still queued: every 202 exactly once.
        await process.start(http)

        async def archived() -> bool:
            rows = await pg.fetch("SELECT event_id FROM ingest.events WHERE charge_point_id = $1", cp)
            return {r["event_id"] for r in rows} == set(accepted)

        await eventually(archived, timeout=30)
        started = {tx for event_id, tx in accepted.items() if "-start-" in event_id}
        ended = {tx for event_id, tx in accepted.items() if "-end-" in event_id}

        async def sessions() -> list[dict] | None:
            async with http.get(f"{process.url}/v1/chargers/{cp}/sessions?limit=500",
                                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as response:
                body = await response.json()
            items = body.get("items", []) if response.status == 200 else []
            by_charger = {s["transactionId"] for s in items if s["closedBy"] == "Charger"}
            return items if len(items) == len(started | ended) and by_charger == ended else None

        items = await eventually(sessions, timeout=30)
        assert sorted(s["transactionId"] for s in items) == sorted(started | ended)  # one session per transaction
        for session in items:  # a start whose end was refused: closed by the next start on its connector
            if session["transactionId"] not in ended and session["transactionId"] != max(started):
                assert (session["status"], session["closedBy"]) == ("Finalized", "NextTransaction"), session
        for session in items:
            if session["transactionId"] in started & ended:
                assert session["energyWh"] == session["transactionId"], session  # stop - start, applied once

        process.terminate()
        assert await process.exit_code(timeout=SHUTDOWN_TIMEOUT + 10) == 0


async def _at_least(accepted: dict, count: int) -> bool:
    return len(accepted) >= count
