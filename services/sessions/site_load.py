"""The owner of site power limits (CONTRACT section 13). For one site at a time it reads the limit,
the chargers and their connectors, the Active sessions with what they draw, and the profiles in
force; decides the shares (`load_shares`) and which profiles may go out now (`load_plan`); and
orders them from the commands service through the outbox (`command.ordered`). Each answer
(`command.finished`) makes the site due again, which sends the raises that waited for it.

A site is due when a session starts or ends there, a charger of it boots, its limit changes, an
answer comes, and every `CPMS_LOAD_REBALANCE_SECONDS` while it has Active sessions.

A charger no longer under a limit (its site lost it, or it moved to a site without one) would
stay throttled by what it holds: `clear_released` orders a ClearChargingProfile for each of those
profiles, once."""
from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import asyncpg
from aiohttp import web

from services.sessions import metrics, store
from services.sessions.charging_profiles import (Wiring, clear_charging_profile, get_rate_unit, limit_in, rate_unit_of,
                                                 set_charging_profile)
from services.sessions.load_plan import Slot, sends_now
from services.sessions.load_shares import UNKNOWN_CAP_W, Allocation, Demand, allocate, wanted_power
from shared.app import POOL, SETTINGS, outbox_relay
from shared.consumer import Message
from shared.domain import CommandFinished, CommandOrdered
from shared.outbox import enqueue_domain_many
from shared.periodic import every

log = logging.getLogger(__name__)

# idempotency keys of the commands ordered here
PROFILE_KEY, CLEAR_KEY, UNIT_KEY = "load:profile:", "load:clear:", "load:unit:"
POLL_SECONDS = 0.5
# Over its share: beyond what rounding and a meter's error explain.
OVER_SHARE_FACTOR, OVER_SHARE_MARGIN_W = Decimal("1.05"), 200
IN_FORCE = ("Pending", "Unknown")  # sent, not answered (or nobody knows): it may apply already


@dataclass(frozen=True)
class Connector:
    cap_w: int = UNKNOWN_CAP_W
    wiring: Wiring = Wiring()


@dataclass(frozen=True)
class InForce:
    watts: int
    accepted: bool  # a profile of this slot was accepted (since the charger's last boot)
    pending: bool  # one is on its way


def in_force(rows: list[asyncpg.Record], *, fallback_w: int, since: datetime | None = None) -> InForce:
    """What a slot may draw now: its last accepted profile (since `since`), or `fallback_w` without
    one; raised by every profile sent after it that may already apply."""
    accepted = [r for r in rows if r["status"] == "Accepted" and (since is None or r["answered_at"] >= since)]
    last = accepted[-1] if accepted else None
    watts = last["limit_w"] if last else fallback_w
    later = [r["limit_w"] for r in rows if r["status"] in IN_FORCE and (last is None or r["sent_at"] > last["sent_at"])]
    return InForce(max([watts, *later]), last is not None, any(r["status"] == "Pending" for r in rows))


def limit_when_read(rows: list[asyncpg.Record], received_at: datetime, *, fallback_w: int) -> int:
    """The session's accepted limit when a reading was received: a car that drew its limit then may
    want more now, one that drew clearly less does not (`load_shares.wanted_power`)."""
    before = [r["limit_w"] for r in rows if r["status"] == "Accepted" and r["answered_at"] <= received_at]
    return before[-1] if before else fallback_w


def _connectors(rows: Iterable[asyncpg.Record]) -> dict[str, dict[int, Connector]]:
    found: dict[str, dict[int, Connector]] = {}
    for r in rows:
        found.setdefault(r["charge_point_id"], {})[r["connector_id"]] = Connector(
            cap_w=r["max_electric_power"] or UNKNOWN_CAP_W, wiring=Wiring.of(r["power_type"], r["max_voltage"]))
    return found


def _drew_over(session: asyncpg.Record, accepted: asyncpg.Record | None) -> bool:
    """Its two newest readings, both taken after its profile was accepted, are over its share."""
    if accepted is None or accepted["purpose"] != "TxProfile":
        return False
    readings = [r for r in session["readings"] if datetime.fromisoformat(r["receivedAt"]) > accepted["answered_at"]]
    ceiling = Decimal(accepted["limit_w"]) * OVER_SHARE_FACTOR + OVER_SHARE_MARGIN_W
    return len(readings) == 2 and all(Decimal(str(r["watts"])) > ceiling for r in readings)


def _measured(session: asyncpg.Record) -> int | None:
    return int(Decimal(str(session["readings"][0]["watts"]))) if session["readings"] else None


@dataclass(frozen=True)
class Site:
    """What one computation reads of a limited site."""

    site_id: UUID
    limit_w: int
    chargers: dict[str, asyncpg.Record]  # by charger id, with what load sharing knows of each
    connectors: dict[str, dict[int, Connector]]  # every charger has at least one
    sessions: list[asyncpg.Record]  # the Active ones, with their newest readings
    slot_rows: dict[tuple, list[asyncpg.Record]]  # ("tx", session id) / ("default", charger id) -> its open profiles

    def rows(self, slot: tuple) -> list[asyncpg.Record]:
        return self.slot_rows.get(slot, [])

    def connector_of(self, session: asyncpg.Record) -> Connector:
        return self.connectors[session["charge_point_id"]][session["connector_id"]]

    def unit_known(self, charge_point_id: str) -> bool:
        return self.chargers[charge_point_id]["rate_unit"] is not None

    def must_wait(self, charge_point_id: str) -> bool:
        """Its profiles wait while its unit is unknown, or while a clearing ordered for it is
        unanswered: delivered after it, a new profile would be wiped by it."""
        return not self.unit_known(charge_point_id) or self.chargers[charge_point_id]["clearing"]

    def flagged(self) -> set[str]:
        return {cp for cp, c in self.chargers.items() if c["flagged_at"] is not None}


@dataclass(frozen=True)
class Plan:
    """The shares decided and the slots they go to, for the chargers that can be managed."""

    managed: list[str]
    sessions: dict[UUID, asyncpg.Record]  # the Active sessions of managed chargers
    budget_w: int  # the limit less what flagged chargers may draw
    allocation: Allocation
    slots: dict[tuple, Slot]


async def rebalance(conn: asyncpg.Connection, site_id: UUID, *, rebalance_seconds: float) -> None:
    """Decide the site's shares and order the profiles that may go out now (in the caller's transaction)."""
    limits = await store.load.lock_site(conn, site_id)
    if limits is None:  # another process is at it
        return
    if limits["max_power_w"] is None:
        await _lift(conn, site_id)
        return
    site = await _read_site(conn, site_id, limits["max_power_w"])
    drawing_over = _drawing_over(site)
    await _flag_drawing_over(conn, drawing_over)
    plan = _plan(site, flagged=site.flagged() | set(drawing_over))
    await _order(conn, _profiles_now(site, plan), _units_to_ask(site, plan))
    await _record(conn, site, plan.allocation, rebalance_seconds=rebalance_seconds)


async def _lift(conn: asyncpg.Connection, site_id: UUID) -> None:
    """No limit (any more): no shares, and the site's chargers are looked at for clearing (`clear_released`)."""
    await store.load.save_computation(conn, site_id, shares=[], idle_w=None, measured_w=0, over_limit=False,
                                      next_in_seconds=None)
    await store.load.release(conn, site_id=site_id)


async def _read_site(conn: asyncpg.Connection, site_id: UUID, limit_w: int) -> Site:
    """The site's chargers, their connectors, the Active sessions and the profiles that may be in force."""
    chargers = {r["charge_point_id"]: r for r in await store.load.site_chargers(conn, site_id)}
    connectors = _connectors(await store.load.site_connectors(conn, list(chargers)))
    sessions = await store.load.active_sessions(conn, list(chargers))
    for s in sessions:
        connectors.setdefault(s["charge_point_id"], {}).setdefault(s["connector_id"], Connector())
    for cp in chargers:
        if not connectors.get(cp):  # a charger that told nothing of its connectors counts as one
            connectors[cp] = {1: Connector()}
    slot_rows: dict[tuple, list[asyncpg.Record]] = {}
    for row in await store.load.open_profiles(conn, list(chargers), [s["session_id"] for s in sessions]):
        slot = ("tx", row["session_id"]) if row["purpose"] == "TxProfile" else ("default", row["charge_point_id"])
        slot_rows.setdefault(slot, []).append(row)
    return Site(site_id, limit_w, chargers, connectors, sessions, slot_rows)


def _drawing_over(site: Site) -> dict[str, str]:
    """Chargers not flagged yet that accepted their profile and keep drawing over it, with the reason."""
    found = {}
    for s in site.sessions:
        accepted = [r for r in site.rows(("tx", s["session_id"])) if r["status"] == "Accepted"]
        if site.chargers[s["charge_point_id"]]["flagged_at"] is None and _drew_over(s, accepted[-1] if accepted else None):
            found[s["charge_point_id"]] = "drew over its share for two readings"
    return found


async def _flag_drawing_over(conn: asyncpg.Connection, reasons: dict[str, str]) -> None:
    """Flagged, as a charger that rejected its profile was."""
    if reasons:
        await store.load.flag_chargers(conn, reasons)
        metrics.CHARGERS_FLAGGED.labels("over_share").inc(len(reasons))


def _plan(site: Site, *, flagged: set[str]) -> Plan:
    """Flagged chargers count at their maximum; the managed sessions share the rest by what they
    want, the idle connectors keep what is left; then each slot's target beside what is in force."""
    managed = [cp for cp in site.chargers if cp not in flagged]
    fixed_w = sum(c.cap_w for cp in flagged for c in site.connectors[cp].values())
    fail_safe_w = site.limit_w // sum(len(site.connectors[cp]) for cp in site.chargers) if site.chargers else site.limit_w
    defaults = {cp: in_force(site.rows(("default", cp)), since=site.chargers[cp]["booted_at"],
                             fallback_w=max(c.cap_w for c in site.connectors[cp].values())) for cp in managed}
    busy = {(s["charge_point_id"], s["connector_id"]) for s in site.sessions}
    idle = {cp: sum(1 for connector_id in site.connectors[cp] if (cp, connector_id) not in busy) for cp in managed}
    sessions = {s["session_id"]: s for s in site.sessions if s["charge_point_id"] not in flagged}
    forces, demands = _sessions_in_force(site, sessions.values(), defaults)
    allocation = allocate(site.limit_w, demands, fixed_w=fixed_w, idle_connectors=sum(idle.values()), fail_safe_w=fail_safe_w)

    slots: dict[tuple, Slot] = {}
    for session_id, s in sessions.items():
        force, cp = forces[session_id], s["charge_point_id"]
        slots[("tx", session_id)] = Slot(1, force.watts, allocation.shares[session_id],
                                         waiting=force.pending or site.must_wait(cp),
                                         must_send=("tx", session_id) not in site.slot_rows)
    for cp in managed:
        force = defaults[cp]
        slots[("default", cp)] = Slot(idle[cp], force.watts, allocation.idle_w, waiting=force.pending or site.must_wait(cp),
                                      must_send=bool(site.chargers[cp]["default_due"]) or not force.accepted)
    return Plan(managed, sessions, max(site.limit_w - fixed_w, 0), allocation, slots)


def _sessions_in_force(site: Site, sessions: Iterable[asyncpg.Record],
                       defaults: dict[str, InForce]) -> tuple[dict[UUID, InForce], dict[UUID, Demand]]:
    """Each session's power in force (without a profile of its own: its charger's default) and what it wants."""
    forces, demands = {}, {}
    for s in sessions:
        connector = site.connector_of(s)
        rows = site.rows(("tx", s["session_id"]))
        fallback_w = min(defaults[s["charge_point_id"]].watts, connector.cap_w)
        forces[s["session_id"]] = in_force(rows, fallback_w=fallback_w)
        measured = _measured(s)
        read_under = limit_when_read(rows, datetime.fromisoformat(s["readings"][0]["receivedAt"]), fallback_w=fallback_w) \
            if measured is not None else fallback_w
        demands[s["session_id"]] = Demand(connector.cap_w, wanted_power(connector.cap_w, read_under, measured))
    return forces, demands


def _profiles_now(site: Site, plan: Plan) -> list[dict]:
    """The profiles that may go out now (`load_plan.sends_now`), each in its charger's unit."""
    profiles = []
    for kind, key in sends_now(plan.budget_w, plan.slots):
        if kind == "tx":
            s = plan.sessions[key]
            cp, connector_id, transaction_id = s["charge_point_id"], s["connector_id"], s["transaction_id"]
            wiring = site.connector_of(s).wiring
        else:
            cp, connector_id, transaction_id = key, 0, None
            wiring = max((c.wiring for c in site.connectors[cp].values()), key=lambda w: w.phases * w.volts)
        unit, watts = site.chargers[cp]["rate_unit"], plan.slots[(kind, key)].target_w
        profiles.append({"profile_id": uuid.uuid4(), "site_id": site.site_id, "charge_point_id": cp, "connector_id": connector_id,
                         "purpose": "TxProfile" if kind == "tx" else "TxDefaultProfile", "session_id": key if kind == "tx" else None,
                         "transaction_id": transaction_id, "limit_w": watts, "rate_unit": unit,
                         "limit_value": limit_in(unit, watts, wiring), "wiring": wiring})
    return profiles


def _units_to_ask(site: Site, plan: Plan) -> list[str]:
    """Asked once the charger was heard of: a question to a charger never connected waits in backoff."""
    return [cp for cp in plan.managed
            if not site.unit_known(cp) and site.chargers[cp]["unit_asked_at"] is None and site.chargers[cp]["heard"]]


async def _record(conn: asyncpg.Connection, site: Site, allocation: Allocation, *, rebalance_seconds: float) -> None:
    """Each Active session's share (a flagged charger's: its cap), what they draw, and when the site is due again."""
    measured_w = sum(_measured(s) or 0 for s in site.sessions)
    shares = [(s["session_id"], site.connector_of(s).cap_w, allocation.shares.get(s["session_id"], site.connector_of(s).cap_w))
              for s in site.sessions]
    await store.load.save_computation(conn, site.site_id, shares=shares, idle_w=allocation.idle_w, measured_w=measured_w,
                                      over_limit=measured_w > site.limit_w,
                                      next_in_seconds=rebalance_seconds if site.sessions else None)


async def clear_released(conn: asyncpg.Connection) -> list[str]:
    """Chargers whose site lost its limit, that moved, or that booted: a ClearChargingProfile for
    each profile of ours they may hold, unless their site has a limit (its shares replace them).
    Looked at once: a refused clearing is not sent again; one that never reached the charger is,
    at its next boot. The chargers something was ordered for."""
    released = await store.load.released_chargers(conn, limit=100)
    if not released:
        return []
    clearings = [{"profile_id": uuid.uuid4(), "site_id": r["site_id"], "charge_point_id": r["charge_point_id"],
                  "connector_id": r["connector_id"], "purpose": r["purpose"], "session_id": r["session_id"],
                  "transaction_id": r["transaction_id"], "action": "ClearChargingProfile"}
                 for r in await store.load.held_profiles(conn, released)]
    await store.load.releases_looked_at(conn, released)
    await _order(conn, clearings, [])
    return sorted({c["charge_point_id"] for c in clearings})


async def _order(conn: asyncpg.Connection, profiles: list[dict], asking: list[str]) -> None:
    """Store the profiles (set or cleared) and order them, and the rate-unit questions, in the caller's transaction."""
    now = datetime.now(UTC)
    await store.load.record_profiles(conn, profiles)
    await store.load.defaults_sent(conn, [p["charge_point_id"] for p in profiles
                                          if p["purpose"] == "TxDefaultProfile" and p.get("action") != "ClearChargingProfile"])
    await store.load.units_asked(conn, asking)
    ordered = [_command(p, now) for p in profiles]
    ordered += [CommandOrdered(idempotencyKey=f"{UNIT_KEY}{uuid.uuid4()}", type="GetConfiguration", chargePointId=cp,
                               payload=get_rate_unit(), at=now) for cp in asking]
    await enqueue_domain_many(conn, store.SCHEMA, ordered)


def _command(profile: dict, at: datetime) -> CommandOrdered:
    if profile.get("action") == "ClearChargingProfile":
        return CommandOrdered(idempotencyKey=f"{CLEAR_KEY}{profile['profile_id']}", type="ClearChargingProfile",
                              chargePointId=profile["charge_point_id"], at=at,
                              payload=clear_charging_profile(purpose=profile["purpose"], connector_id=profile["connector_id"]))
    return CommandOrdered(idempotencyKey=f"{PROFILE_KEY}{profile['profile_id']}", type="SetChargingProfile",
                          chargePointId=profile["charge_point_id"], at=at,
                          payload=set_charging_profile(purpose=profile["purpose"], connector_id=profile["connector_id"],
                                                       transaction_id=profile["transaction_id"], unit=profile["rate_unit"],
                                                       limit=profile["limit_value"], wiring=profile["wiring"]))


def outcome_of(finished: CommandFinished) -> str:
    """Answered: the charger answered (`response`); Refused: the gateway or the charger refused it
    (sending it again changes nothing); NotDelivered: it never reached the charger; Unknown: nobody
    knows whether the charger acted on it."""
    if finished.status == "Acked":
        return "Answered"
    if finished.outcome in ("rejected", "call_error"):
        return "Refused"
    if finished.outcome in ("timeout", "unknown"):
        return "Unknown"
    return "NotDelivered"


def profile_status(finished: CommandFinished) -> str:
    outcome = outcome_of(finished)
    if outcome == "Answered":
        return "Accepted" if (finished.response or {}).get("status") == "Accepted" else "Rejected"
    return "Rejected" if outcome == "Refused" else outcome


def clearing_status(finished: CommandFinished) -> str:
    """A charger that answered cleared it, or held no such profile (`Unknown`): gone either way."""
    return "Accepted" if outcome_of(finished) == "Answered" else profile_status(finished)


async def apply_command_answers(conn: asyncpg.Connection, messages: list[Message]) -> None:
    """The outcome of each profile, clearing and rate-unit question ordered here; a charger that
    refused a profile is flagged; its site is due again (the raises waiting for a lower go out)."""
    due: set[str] = set()
    refused: dict[str, str] = {}
    for message in messages:
        answered = CommandFinished.model_validate(message.body)
        key, cp = answered.idempotencyKey, answered.chargePointId
        if key.startswith((PROFILE_KEY, CLEAR_KEY)):
            clearing = key.startswith(CLEAR_KEY)
            status = clearing_status(answered) if clearing else profile_status(answered)
            detail = None if status == "Accepted" else answered.error or f"the charger answered {(answered.response or {}).get('status')}"
            profile_id = UUID(key.removeprefix(CLEAR_KEY if clearing else PROFILE_KEY))
            if await store.load.record_answer(conn, profile_id, status, detail) is None:
                continue
            metrics.LOAD_PROFILES.labels("ClearChargingProfile" if clearing else "SetChargingProfile", status).inc()
            if status == "Rejected" and not clearing:  # a refused clearing says nothing of the shares
                refused[cp] = f"refused a charging profile: {detail}"
        elif key.startswith(UNIT_KEY):
            # Refused (a gateway without GetConfiguration): W, as CONTRACT 13 says; never delivered: ask again.
            outcome = outcome_of(answered)
            unit = rate_unit_of(answered.response) if outcome == "Answered" else "W" if outcome == "Refused" else None
            await store.load.record_unit(conn, cp, unit)
        else:
            continue
        due.add(cp)
    if refused:
        await store.load.flag_chargers(conn, refused)
        metrics.CHARGERS_FLAGGED.labels("refused").inc(len(refused))
    if due:
        await store.load.make_due(conn, charge_point_ids=sorted(due))


async def rebalance_due_sites(app: web.Application) -> None:
    """Every site whose shares are due, each in its own transaction, then the chargers released
    from a limit; then the orders go out at once."""
    pool, seconds = app[POOL], app[SETTINGS].load_rebalance_seconds
    async with pool.acquire() as conn:
        due = await store.load.due_sites(conn, limit=100)
    for site_id in due:
        async with pool.acquire() as conn, conn.transaction():
            await rebalance(conn, site_id, rebalance_seconds=seconds)
    async with pool.acquire() as conn:
        async with conn.transaction():
            cleared = await clear_released(conn)
        if cleared:  # a limit set meanwhile: its next computation sees the clearings
            await store.load.make_due(conn, charge_point_ids=cleared)
            outbox_relay(app, store.SCHEMA).wake()
    if due:
        outbox_relay(app, store.SCHEMA).wake()
        async with pool.acquire() as conn:
            metrics.SITES_OVER_LIMIT.set(await store.load.sites_over_limit(conn))


balancer = every("sessions:site-load", lambda app: POLL_SECONDS, rebalance_due_sites)
