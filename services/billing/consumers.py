"""Queues the billing service consumes: finalized sessions to price, going sessions' progress to
price so far, registrations that name a site."""
from __future__ import annotations

import logging

import asyncpg

from services.billing import sites
from services.billing.pricing import price_sessions, price_so_far
from shared.config import BillingSettings
from shared.consumer import Message, each
from shared.domain import ChargerRegistered, SessionFinalized, SessionProgress
from shared.operators import copy_of_operators
from shared.service import Consumes
from shared.topology import BILLING_CHARGERS, BILLING_OPERATORS, BILLING_PROGRESS, BILLING_SESSIONS

log = logging.getLogger(__name__)


async def price_finalized_sessions(conn: asyncpg.Connection, messages: list[Message]) -> None:
    await price_sessions(conn, [SessionFinalized.model_validate(m.body) for m in messages])


async def price_session_progress(conn: asyncpg.Connection, messages: list[Message], settings: BillingSettings) -> None:
    await price_so_far(conn, [SessionProgress.model_validate(m.body) for m in messages], default_currency=settings.default_currency)


async def assign_registered_charger(conn: asyncpg.Connection, message: Message) -> None:
    """A registration that names an existing site assigns the charger to it, unless an operator
    assigned it after the registration."""
    registered = ChargerRegistered.model_validate(message.body)
    if registered.siteId is None:
        return
    if await sites.assign(conn, registered.chargePointId, registered.siteId, as_of=registered.at) is None:
        log.info("registration site not applied", extra={"site_id": str(registered.siteId)})


CONSUMERS = (
    Consumes(BILLING_SESSIONS, price_finalized_sessions, wakes_outbox=True),
    Consumes(BILLING_PROGRESS, price_session_progress, wakes_outbox=True, takes_settings=True),
    Consumes(BILLING_CHARGERS, each(assign_registered_charger), wakes_outbox=True),
    copy_of_operators("billing", BILLING_OPERATORS),
)
