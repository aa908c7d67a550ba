"""Many simulated chargers against one gateway: each connects as OCPP 1.6J asks (its id in the
path, HTTP Basic auth with its secret, subprotocol ocpp1.6), runs, and reconnects when its
connection drops; at most `concurrency` of them are connected at a time."""
from __future__ import annotations

import asyncio
import base64
import logging
from dataclasses import dataclass
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.typing import Subprotocol

from services.simulator.charger import Behaviour, Link, SimulatedCharger, Tally

log = logging.getLogger(__name__)

OCPP16 = Subprotocol("ocpp1.6")
OPEN_TIMEOUT_SECONDS = 30
RETRY_DELAYS = (1, 2, 4, 8, 15)  # seconds before each new attempt to connect (at least what Retry-After says)
TRANSIENT_REFUSALS = frozenset({429, 502, 503, 504})  # a handshake refused for now, not for good


@dataclass(frozen=True)
class Fleet:
    """Which chargers to play and where they connect."""

    url: str  # the gateway's OCPP endpoint, e.g. ws://localhost:8080/ocpp16; the charger's id is appended
    chargers: int
    secret: str
    prefix: str = "SIM-"
    concurrency: int | None = None  # chargers connected at a time; None: all of them

    @property
    def charger_ids(self) -> list[str]:
        """`SIM-001`, `SIM-002`, ...: at least three digits, more when there are more chargers."""
        width = max(3, len(str(self.chargers)))
        return [f"{self.prefix}{number:0{width}d}" for number in range(1, self.chargers + 1)]

    def url_of(self, charge_point_id: str) -> str:
        return f"{self.url.rstrip('/')}/{quote(charge_point_id, safe='')}"


def basic_auth(charge_point_id: str, secret: str) -> str:
    """OCPP security profile 1: the charger's id as user, its secret as password."""
    return "Basic " + base64.b64encode(f"{charge_point_id}:{secret}".encode()).decode()


async def simulate(fleet: Fleet, behaviour: Behaviour, *, stopping: asyncio.Event | None = None) -> Tally:
    """Run every charger of `fleet` to the end of its sessions (and linger); `stopping` ends the
    run early: open sessions are stopped (reason Local) and the chargers disconnect."""
    tally = Tally()
    stopping = stopping or asyncio.Event()
    slots = asyncio.Semaphore(fleet.concurrency or max(fleet.chargers, 1))
    running: set[SimulatedCharger] = set()

    async def play(charge_point_id: str) -> None:
        async with slots:
            if not stopping.is_set():
                await _run_charger(fleet, behaviour, tally, charge_point_id, running, stopping)

    async def close_on_stop() -> None:
        await stopping.wait()
        for charger in list(running):
            charger.close()

    closer = asyncio.create_task(close_on_stop())
    try:
        await asyncio.gather(*(play(charge_point_id) for charge_point_id in fleet.charger_ids))
    finally:
        closer.cancel()
    return tally


async def _connect(fleet: Fleet, charge_point_id: str, *, closing: asyncio.Event) -> ClientConnection:
    """A connection, tried again as a charger does after a network error or a handshake refused
    for now (429, 5xx); raises the last error when the attempts are spent, at once for a 401."""
    last: Exception | None = None
    for delay in (0, *RETRY_DELAYS):
        if last is not None:
            if closing.is_set():
                break
            await asyncio.sleep(max(delay, _retry_after(last)))
        try:
            return await connect(
                fleet.url_of(charge_point_id), subprotocols=[OCPP16], proxy=None, open_timeout=OPEN_TIMEOUT_SECONDS,
                additional_headers={"Authorization": basic_auth(charge_point_id, fleet.secret)},
            )
        except InvalidStatus as exc:
            if exc.response.status_code not in TRANSIENT_REFUSALS:
                raise
            last = exc
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            last = exc
        log.info("%s: connecting failed, trying again: %s", charge_point_id, last)
    raise last


def _retry_after(error: Exception) -> float:
    if isinstance(error, InvalidStatus):
        try:
            return min(float(error.response.headers.get("Retry-After", 0)), 60.0)
        except ValueError:
            return 0.0
    return 0.0


async def _run_charger(fleet: Fleet, behaviour: Behaviour, tally: Tally, charge_point_id: str,
                       running: set[SimulatedCharger], stopping: asyncio.Event) -> None:
    try:
        websocket = await _connect(fleet, charge_point_id, closing=stopping)
    except InvalidStatus as exc:
        tally.chargers_refused += 1
        log.warning("%s: the gateway refused the connection (HTTP %s)", charge_point_id, exc.response.status_code)
        return
    except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
        tally.chargers_failed += 1
        log.warning("%s: could not connect: %s", charge_point_id, exc)
        return
    tally.chargers_connected += 1
    link = Link(tally)
    link.attach(websocket)
    charger = SimulatedCharger(charge_point_id, link, behaviour, tally)
    running.add(charger)
    work = asyncio.create_task(charger.run(), name=f"simulate:{charge_point_id}")
    try:
        while True:
            reader = asyncio.create_task(charger.start())  # the library's loop: answers the central system's calls
            await asyncio.wait({work, reader}, return_when=asyncio.FIRST_COMPLETED)
            if work.done():
                reader.cancel()
                break
            if not isinstance(reader.exception(), ConnectionClosed):
                log.error("%s: reading from the gateway failed: %r", charge_point_id, reader.exception())
            try:
                websocket = await _connect(fleet, charge_point_id, closing=charger.closing)
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                if not charger.closing.is_set():
                    log.warning("%s: could not reconnect: %s", charge_point_id, exc)
                    tally.chargers_failed += 1
                work.cancel()
                break
            link.attach(websocket)
            charger.reconnected()
    finally:
        running.discard(charger)
        await link.websocket.close()
        await asyncio.gather(work, return_exceptions=True)
        if work.done() and not work.cancelled() and work.exception() is not None:
            log.error("%s stopped: %r", charge_point_id, work.exception())
