"""Pricing a finalized session: the tariff in force at its start for the charger's site, the
exact cost, and the one settlement that follows the price while nothing has been paid."""
from __future__ import annotations

import logging

import asyncpg

from services.billing import metrics, store
from services.billing.money import session_cost
from shared.domain import SessionFinalized

log = logging.getLogger(__name__)

NOT_PRICED = {
    "missing_energy": "its energy is Missing",
    "no_start": "its start was never reported",
    "no_site": "its charger belongs to no site",
    "no_tariff": "its site had no tariff in force when it started",
}


async def price_session(conn: asyncpg.Connection, session: SessionFinalized) -> None:
    """Apply one finalization revision; an older or repeated revision changes nothing, so any
    order of deliveries converges on the highest revision."""
    current = await store.lock_session_price(conn, session.sessionId, session.chargePointId)
    if current["revision"] is not None and session.revision <= current["revision"]:
        return
    settlement = await store.lock_settlement_of_session(conn, session.sessionId)
    if settlement is not None and settlement["status"] != "Pending":
        # Money has moved (or was refused): the amount stays what it was.
        metrics.REPRICING_REFUSED.inc()
        await store.record_revision(conn, session.sessionId, session.revision, session.energyWh, not_priced_reason="settlement_not_pending")
        return

    site = await store.site_of_charger(conn, session.chargePointId)
    tariff = None
    if session.energyWh is None or session.energySource == "Missing":
        reason = "missing_energy"
    elif session.startedAt is None:
        reason = "no_start"
    elif site is None:
        reason = "no_site"
    elif (tariff := await store.tariff_in_force(conn, site["site_id"], session.startedAt)) is None:
        reason = "no_tariff"
    else:
        reason = None

    if reason is not None:
        metrics.SESSIONS_NOT_PRICED.labels(reason).inc()
        await store.record_revision(conn, session.sessionId, session.revision, session.energyWh, not_priced_reason=reason)
        if settlement is not None:
            await store.change_status(
                conn, settlement["settlement_id"], "Failed",
                error=f"the session was re-finalized (revision {session.revision}) and can no longer be priced: {NOT_PRICED[reason]}",
            )
        return

    if session.energyWh < 0:
        raise ValueError(f"session {session.sessionId} has a negative energy {session.energyWh}")
    cost = session_cost(session.energyWh, tariff["price_per_kwh"], tariff["currency"])
    await store.record_price(conn, session.sessionId, session.revision, session.energyWh, tariff, cost)
    if settlement is None:
        await store.create_settlement(conn, session.sessionId, session.chargePointId, site, cost, tariff["currency"])
    else:
        await store.reprice_settlement(conn, settlement["settlement_id"], site, cost, tariff["currency"])
    metrics.SESSIONS_PRICED.inc()
