"""The load the fault tests run: chargers played through the reference gateway's exact event JSON
(boot, status, start, K samples, end, status), sent one request per event with a few in flight,
503s retried as a gateway would; and the check that every accepted event was applied exactly once.

Half of the chargers report `meterStopWh` (energy from the meter readings); the other half report
only `Energy.Active.Import.Interval` samples and no stop reading, so their energy is a sum of
samples: a sample applied twice, or lost, changes the energy and the amount."""
from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from shared.jsonutil import format_ts
from tests.ingest import gateway_events as ev
from tests.support import Api, eventually, unique_id

PRICE_PER_KWH = Decimal("0.30")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Charger:
    charge_point_id: str
    transaction_id: int
    meter_start_wh: int
    interval_wh: tuple[int, ...]  # one energy step per sample
    reports_stop: bool

    @property
    def energy_wh(self) -> int:
        return sum(self.interval_wh)

    @property
    def energy_source(self) -> str:
        return "StopTransaction" if self.reports_stop else "MeterValues.Interval"

    @property
    def cost(self) -> Decimal:
        return (Decimal(self.energy_wh) / 1000 * PRICE_PER_KWH).quantize(CENT, rounding=ROUND_HALF_UP)

    def events(self, start: datetime) -> list[dict]:
        cp, tx = self.charge_point_id, self.transaction_id

        def ts(seconds: int) -> str:
            return format_ts(start + timedelta(seconds=seconds))

        events = [ev.booted(cp, ts(0)), ev.status(cp, 1, "Preparing", ts(1)), ev.started(cp, tx, self.meter_start_wh, ts(2))]
        reading = self.meter_start_wh
        for k, step in enumerate(self.interval_wh):
            reading += step
            if self.reports_stop:
                events.append(ev.sample(cp, tx, str(reading), ts(10 + k)))
            else:
                events.append(ev.sample(cp, tx, str(step), ts(10 + k), measurand="Energy.Active.Import.Interval"))
        last = 10 + len(self.interval_wh)
        events.append(ev.ended(cp, tx, reading if self.reports_stop else None, ts(last)))
        events.append(ev.status(cp, 1, "Available", ts(last + 1)))
        return events


@dataclass
class Outcome:
    """What the load generator saw: the event ids the CPMS promised (2xx), and every status it got."""
    accepted: set[str] = field(default_factory=set)
    statuses: Counter = field(default_factory=Counter)
    requests: int = 0


class Load:
    """A site with a tariff, `chargers` chargers assigned to it, and their events."""

    def __init__(self, chargers: int, samples: int = 6) -> None:
        self.chargers = [
            Charger(unique_id("FLT"), 1 + i % 9, (i * 7919) % 50_000,
                    tuple(100 + (i * 37 + k * 53) % 900 for k in range(samples)), reports_stop=i % 2 == 0)
            for i in range(chargers)
        ]
        self.outcome = Outcome()
        self.plans: list[list[dict]] = []

    @property
    def charge_point_ids(self) -> list[str]:
        return [c.charge_point_id for c in self.chargers]

    @property
    def event_count(self) -> int:
        return sum(len(plan) for plan in self.plans)

    async def prepare(self, api: Api) -> None:
        """Site, tariff and site assignments through the billing API; sessions start after the tariff."""
        status, site = await api.admin("POST", "/v1/sites", {"name": "Fault depot"})
        assert status == 201, site
        status, tariff = await api.admin("POST", f"/v1/sites/{site['siteId']}/tariffs", {"pricePerKwh": str(PRICE_PER_KWH), "currency": "USD"})
        assert status == 201, tariff
        for cp in self.charge_point_ids:
            status, body = await api.admin("PUT", f"/v1/chargers/{cp}/site", {"siteId": site["siteId"]})
            assert status == 200, body
        start = max(datetime.now(UTC), datetime.fromisoformat(tariff["createdAt"])) + timedelta(seconds=1)
        self.plans = [charger.events(start + timedelta(milliseconds=i)) for i, charger in enumerate(self.chargers)]

    async def run(self, api: Api, *, concurrency: int = 8, pause: float = 0.0, give_up_after: float = 90.0) -> Outcome:
        """Each worker plays one charger at a time, its events in order, one request each; a 503 is
        retried (the gateway still owns the event) until it is accepted. `pause` spaces the
        requests so a fault injected meanwhile lands mid-load."""
        pending: asyncio.Queue[list[dict]] = asyncio.Queue()
        for plan in self.plans:
            pending.put_nowait(plan)
        deadline = time.monotonic() + give_up_after

        async def worker() -> None:
            while not pending.empty():
                for event in pending.get_nowait():
                    await self._deliver(api, event, deadline)
                    if pause:
                        await asyncio.sleep(pause)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return self.outcome

    async def _deliver(self, api: Api, event: dict, deadline: float) -> None:
        while True:
            self.outcome.requests += 1
            try:
                status, body = await api.gateway("POST", "/v1/gateway/events", event)
            except OSError:  # the CPMS itself is fine in these tests; a refused connection is still retried
                status, body = 0, None
            self.outcome.statuses[status] += 1
            if 200 <= status < 300:
                self.outcome.accepted.add(body["eventId"])
                return
            assert status in (0, 503), (status, body)
            assert time.monotonic() < deadline, "ingest did not accept the event in time"
            await asyncio.sleep(0.1)


async def verify_exactly_once(api: Api, pg, load: Load, *, sessions_api: Api | None = None, timeout: float = 60.0) -> dict:
    """Every accepted event archived once, one session per charger with the generator's energy,
    price and settlement; returns the figures checked. `sessions_api` when the sessions service
    runs in another process than billing (`api`)."""
    outcome, cps = load.outcome, load.charge_point_ids
    sessions_api = sessions_api or api
    assert len(outcome.accepted) == load.event_count  # every event was accepted in the end, each with its own id

    async def archived() -> bool:
        return await pg.fetchval("SELECT count(*) FROM ingest.events WHERE charge_point_id = ANY($1)", cps) >= len(outcome.accepted)

    await eventually(archived, timeout=timeout)
    rows = await pg.fetch("SELECT event_id FROM ingest.events WHERE charge_point_id = ANY($1)", cps)
    assert {r["event_id"] for r in rows} == outcome.accepted and len(rows) == len(outcome.accepted)

    sessions, seen = {}, {}
    for charger in load.chargers:
        try:
            sessions[charger.charge_point_id] = await eventually(
                lambda c=charger: _settled_session(sessions_api, api, c, seen), timeout=timeout)
        except AssertionError:
            raise AssertionError(f"{charger} never settled as expected; last seen: {seen.get(charger.charge_point_id)}") from None
    for charger in load.chargers:
        session = sessions[charger.charge_point_id]
        assert (session["transactionId"], session["energyWh"], session["energySource"], session["isEstimated"]) == (
            charger.transaction_id, charger.energy_wh, charger.energy_source, False), session
        assert (session["costAmount"], session["costCurrency"]) == (str(charger.cost), "USD"), session
        settlements = await _settlements_of(api, session["sessionId"])
        assert [(s["amount"], s["currency"], s["status"]) for s in settlements] == [(str(charger.cost), "USD", "Pending")]

    samples = await pg.fetchval(
        "SELECT count(*) FROM sessions.meter_samples m JOIN sessions.sessions s USING (session_id) WHERE s.charge_point_id = ANY($1)", cps)
    assert samples == sum(len(c.interval_wh) for c in load.chargers)
    session_rows = await pg.fetchval("SELECT count(*) FROM sessions.sessions WHERE charge_point_id = ANY($1)", cps)
    assert session_rows == len(load.chargers)
    energy = sum(s["energyWh"] for s in sessions.values())
    amount = sum(Decimal(s["costAmount"]) for s in sessions.values())
    assert energy == sum(c.energy_wh for c in load.chargers) and amount == sum(c.cost for c in load.chargers)
    return {"events": len(outcome.accepted), "archived": len(rows), "sessions": session_rows, "samples": samples,
            "energyWh": energy, "amount": amount, "statuses": dict(outcome.statuses)}


async def _settled_session(sessions_api: Api, billing_api: Api, charger: Charger, seen: dict) -> dict | None:
    """The charger's session once finalized with its final energy, priced and settled at that price
    (samples that come after the end re-finalize it, so earlier states are not yet the answer)."""
    status, body = await sessions_api.admin("GET", f"/v1/chargers/{charger.charge_point_id}/sessions?limit=500")
    if status != 200:
        return None
    items = body["items"]
    assert len(items) <= 1, items  # one transaction, one session: never a second one
    seen[charger.charge_point_id] = items
    if not items or items[0]["status"] != "Finalized" or items[0]["energyWh"] != charger.energy_wh:
        return None
    if items[0]["costAmount"] != str(charger.cost):
        return None
    settlements = await _settlements_of(billing_api, items[0]["sessionId"])
    seen[charger.charge_point_id] = (items, settlements)
    return items[0] if settlements and settlements[0]["amount"] == str(charger.cost) else None


async def _settlements_of(api: Api, session_id: str) -> list[dict]:
    status, body = await api.admin("GET", f"/v1/settlements?sessionId={session_id}")
    assert status == 200, body
    return body["items"]
