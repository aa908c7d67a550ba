"""The owner of site power limits (CONTRACT section 13). For one site at a time it reads the limit,
the chargers and their connectors, the Active sessions with what they draw, and the profiles in
force; decides the shares (`load_shares`) and which profiles may go out now (`load_plan`); and
orders them from the commands service through the outbox (`command.ordered`). Each answer
(`command.finished`) makes the site due again, which sends the raises that waited for it.

A site is due when a session starts or ends there, a charger of it boots, its limit changes, an
answer comes, and every `CPMS_LOAD_REBALANCE_SECONDS` while it has Active sessions."""
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
from services.sessions.charging_profiles import Wiring, get_rate_unit, limit_in, rate_unit_of, set_charging_profile
from services.sessions.load_plan import Slot, sends_now
from services.sessions.load_shares import UNKNOWN_CAP_W, Demand, allocate, wanted_power
from shared.app import POOL, SETTINGS, outbox_relay
from shared.consumer import Message
from shared.domain import CommandFinished, CommandOrdered
from shared.outbox import enqueue_domain_many
from shared.periodic import every

log = logging.getLogger(__name__)

PROFILE_KEY, UNIT_KEY = "load:profile:", "load:unit:"  # idempotency keys of the commands ordered here
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


async def rebalance(conn: asyncpg.Connection, site_id: UUID, *, rebalance_seconds: float) -> None:
    """Decide the site's shares and order the profiles that may go out now (in the caller's transaction)."""
    site = await store.load.lock_site(conn, site_id)
    if site is None:  # another process is at it
        return
    limit_w = site["max_power_w"]
    if limit_w is None:
        await store.load.save_computation(conn, site_id, shares=[], idle_w=None, measured_w=0, over_limit=False,
                                          next_in_seconds=None)
        return
    chargers = {r["charge_point_id"]: r for r in await store.load.site_chargers(conn, site_id)}
    connectors = _connectors(await store.load.site_connectors(conn, list(chargers)))
    sessions = await store.load.active_sessions(conn, list(chargers))
    for s in sessions:
        connectors.setdefault(s["charge_point_id"], {}).setdefault(s["connector_id"], Connector())
    for cp in chargers:
        if not connectors.get(cp):  # a charger that told nothing of its connectors counts as one
            connectors[cp] = {1: Connector()}
    slots_rows: dict[tuple, list[asyncpg.Record]] = {}
    for row in await store.load.open_profiles(conn, list(chargers), [s["session_id"] for s in sessions]):
        key = ("tx", row["session_id"]) if row["purpose"] == "TxProfile" else ("default", row["charge_point_id"])
        slots_rows.setdefault(key, []).append(row)

    # A charger that accepted its profile and keeps drawing over it is flagged, as one that rejected it was.
    ignoring = {}
    for s in sessions:
        accepted = [r for r in slots_rows.get(("tx", s["session_id"]), []) if r["status"] == "Accepted"]
        if chargers[s["charge_point_id"]]["flagged_at"] is None and _drew_over(s, accepted[-1] if accepted else None):
            ignoring[s["charge_point_id"]] = "drew over its share for two readings"
    if ignoring:
        await store.load.flag_chargers(conn, ignoring)
        metrics.CHARGERS_FLAGGED.labels("over_share").inc(len(ignoring))
    flagged = {cp for cp, c in chargers.items() if c["flagged_at"] is not None} | set(ignoring)
    managed = [cp for cp in chargers if cp not in flagged]
    fixed_w = sum(c.cap_w for cp in flagged for c in connectors[cp].values())  # counted at their maximum
    fail_safe_w = limit_w // sum(len(connectors[cp]) for cp in chargers) if chargers else limit_w

    defaults = {cp: in_force(slots_rows.get(("default", cp), []), since=chargers[cp]["booted_at"],
                             fallback_w=max(c.cap_w for c in connectors[cp].values())) for cp in managed}
    busy = {(s["charge_point_id"], s["connector_id"]) for s in sessions}
    idle = {cp: sum(1 for connector_id in connectors[cp] if (cp, connector_id) not in busy) for cp in managed}
    mine = [s for s in sessions if s["charge_point_id"] not in flagged]
    forces, demands = {}, {}
    for s in mine:
        connector = connectors[s["charge_point_id"]][s["connector_id"]]
        rows, fallback_w = slots_rows.get(("tx", s["session_id"]), []), min(defaults[s["charge_point_id"]].watts, connector.cap_w)
        forces[s["session_id"]] = in_force(rows, fallback_w=fallback_w)
        measured = _measured(s)
        read_under = limit_when_read(rows, datetime.fromisoformat(s["readings"][0]["receivedAt"]), fallback_w=fallback_w) \
            if measured is not None else fallback_w
        demands[s["session_id"]] = Demand(connector.cap_w, wanted_power(connector.cap_w, read_under, measured))
    allocation = allocate(limit_w, demands, fixed_w=fixed_w, idle_connectors=sum(idle.values()), fail_safe_w=fail_safe_w)

    unit_known = {cp: chargers[cp]["rate_unit"] is not None for cp in managed}
    slots: dict[tuple, Slot] = {}
    for s in mine:
        force, cp = forces[s["session_id"]], s["charge_point_id"]
        slots[("tx", s["session_id"])] = Slot(1, force.watts, allocation.shares[s["session_id"]],
                                              waiting=force.pending or not unit_known[cp],
                                              must_send=("tx", s["session_id"]) not in slots_rows)
    for cp in managed:
        force = defaults[cp]
        slots[("default", cp)] = Slot(idle[cp], force.watts, allocation.idle_w, waiting=force.pending or not unit_known[cp],
                                      must_send=bool(chargers[cp]["default_due"]) or not force.accepted)

    by_id = {s["session_id"]: s for s in mine}
    profiles = []
    for kind, key in sends_now(max(limit_w - fixed_w, 0), slots):
        if kind == "tx":
            s = by_id[key]
            cp, connector_id, transaction_id = s["charge_point_id"], s["connector_id"], s["transaction_id"]
            wiring = connectors[cp][connector_id].wiring
        else:
            cp, connector_id, transaction_id = key, 0, None
            wiring = max((c.wiring for c in connectors[cp].values()), key=lambda w: w.phases * w.volts)
        unit, watts = chargers[cp]["rate_unit"], slots[(kind, key)].target_w
        profiles.append({"profile_id": uuid.uuid4(), "site_id": site_id, "charge_point_id": cp, "connector_id": connector_id,
                         "purpose": "TxProfile" if kind == "tx" else "TxDefaultProfile", "session_id": key if kind == "tx" else None,
                         "transaction_id": transaction_id, "limit_w": watts, "rate_unit": unit,
                         "limit_value": limit_in(unit, watts, wiring), "wiring": wiring})
    # Asked once the charger was heard of: a question to a charger never connected waits in backoff.
    asking = [cp for cp in managed if not unit_known[cp] and chargers[cp]["unit_asked_at"] is None and chargers[cp]["heard"]]
    await _order(conn, profiles, asking)

    measured_w = sum(_measured(s) or 0 for s in sessions)
    shares = [(s["session_id"], connectors[s["charge_point_id"]][s["connector_id"]].cap_w,
               allocation.shares.get(s["session_id"], connectors[s["charge_point_id"]][s["connector_id"]].cap_w)) for s in sessions]
    await store.load.save_computation(conn, site_id, shares=shares, idle_w=allocation.idle_w, measured_w=measured_w,
                                      over_limit=measured_w > limit_w, next_in_seconds=rebalance_seconds if sessions else None)


async def _order(conn: asyncpg.Connection, profiles: list[dict], asking: list[str]) -> None:
    """Store the profiles and order them, and the rate-unit questions, in the caller's transaction."""
    now = datetime.now(UTC)
    await store.load.record_profiles(conn, profiles)
    await store.load.defaults_sent(conn, [p["charge_point_id"] for p in profiles if p["purpose"] == "TxDefaultProfile"])
    await store.load.units_asked(conn, asking)
    ordered = [CommandOrdered(idempotencyKey=f"{PROFILE_KEY}{p['profile_id']}", type="SetChargingProfile",
                              chargePointId=p["charge_point_id"], at=now,
                              payload=set_charging_profile(purpose=p["purpose"], connector_id=p["connector_id"],
                                                           transaction_id=p["transaction_id"], unit=p["rate_unit"],
                                                           limit=p["limit_value"], wiring=p["wiring"]))
               for p in profiles]
    ordered += [CommandOrdered(idempotencyKey=f"{UNIT_KEY}{uuid.uuid4()}", type="GetConfiguration", chargePointId=cp,
                               payload=get_rate_unit(), at=now) for cp in asking]
    await enqueue_domain_many(conn, store.SCHEMA, ordered)


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


async def apply_command_answers(conn: asyncpg.Connection, messages: list[Message]) -> None:
    """The outcome of each profile and rate-unit question ordered here; a charger that refused a
    profile is flagged; its site is due again (the raises waiting for a lower go out)."""
    due: set[str] = set()
    refused: dict[str, str] = {}
    for message in messages:
        answered = CommandFinished.model_validate(message.body)
        key, cp = answered.idempotencyKey, answered.chargePointId
        if key.startswith(PROFILE_KEY):
            status = profile_status(answered)
            detail = None if status == "Accepted" else answered.error or f"the charger answered {(answered.response or {}).get('status')}"
            if await store.load.record_answer(conn, UUID(key.removeprefix(PROFILE_KEY)), status, detail) is None:
                continue
            metrics.LOAD_PROFILES.labels(status).inc()
            if status == "Rejected":
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
    """Every site whose shares are due, each in its own transaction; then the orders go out at once."""
    pool, seconds = app[POOL], app[SETTINGS].load_rebalance_seconds
    async with pool.acquire() as conn:
        due = await store.load.due_sites(conn, limit=100)
    for site_id in due:
        async with pool.acquire() as conn, conn.transaction():
            await rebalance(conn, site_id, rebalance_seconds=seconds)
    if due:
        outbox_relay(app, store.SCHEMA).wake()
        async with pool.acquire() as conn:
            metrics.SITES_OVER_LIMIT.set(await store.load.sites_over_limit(conn))


balancer = every("sessions:site-load", lambda app: POLL_SECONDS, rebalance_due_sites)
