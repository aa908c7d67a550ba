"""The settlement state machine: which transitions are allowed, and when a request repeats the
transition just made (a no-op) rather than asking for a new one."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

import asyncpg

from services.billing import store
from shared.domain import SettlementStatus, SettlementStatusChanged
from shared.errors import Conflict
from shared.outbox import enqueue_domain, enqueue_domain_many

ALLOWED: frozenset[tuple[SettlementStatus, SettlementStatus]] = frozenset({
    (SettlementStatus.PENDING, SettlementStatus.SUBMITTED),
    (SettlementStatus.PENDING, SettlementStatus.FAILED),
    (SettlementStatus.SUBMITTED, SettlementStatus.CONFIRMED),
    (SettlementStatus.SUBMITTED, SettlementStatus.FAILED),
    (SettlementStatus.FAILED, SettlementStatus.SUBMITTED),  # a retry, with a new transaction
})


@dataclass(frozen=True)
class Request:
    """What a transition route asks for."""

    status: SettlementStatus  # never Pending: a settlement is created Pending and never goes back
    chain: str | None = None
    tx_hash: str | None = None
    external_ref: str | None = None
    error: str | None = None
    amount: Decimal | None = None  # what the operator minted, when they say
    currency: str | None = None


def _repeats(current: asyncpg.Record, request: Request) -> bool:
    if request.status == SettlementStatus.SUBMITTED:
        return (current["chain"], current["tx_hash"], current["external_ref"]) == (request.chain, request.tx_hash, request.external_ref)
    if request.status == SettlementStatus.FAILED:
        return current["error"] == request.error
    return True


class SettlementConflict(Conflict):
    """The request does not fit the settlement as it is; the answer shows its current figures."""

    title = "Settlement conflict"


def conflict(current: asyncpg.Record, detail: str) -> SettlementConflict:
    return SettlementConflict(detail, currentStatus=current["status"], amount=current["amount"], currency=current["currency"])


def is_noop(current: asyncpg.Record, request: Request) -> bool:
    """True when `request` repeats the state the settlement is in; raises SettlementConflict when
    the transition is not in the graph, a retry reuses the transaction that failed, or the
    operator minted another amount than the settlement's."""
    status = current["status"]
    if (request.amount is not None and request.amount != current["amount"]) or (
            request.currency is not None and request.currency != current["currency"]):
        raise conflict(current, f"the settlement is for {current['amount']} {current['currency']}, "
                                f"not {request.amount or current['amount']} {request.currency or current['currency']}: nothing was changed")
    if status == request.status:
        if _repeats(current, request):
            return True
        raise conflict(current, f"the settlement is already {status} with other data")
    if (status, request.status) not in ALLOWED:
        raise conflict(current, f"a {status} settlement cannot become {request.status}")
    if status == SettlementStatus.FAILED and current["tx_hash"] is not None and current["tx_hash"] == request.tx_hash:
        raise conflict(current, f"the settlement is Failed with txHash {request.tx_hash}: a retry needs a new txHash")
    return False


def status_changed(row: asyncpg.Record) -> SettlementStatusChanged:
    """The announcement of a settlement's status, with what it bills: once it says Submitted or
    Confirmed, money has moved and the session shows these figures."""
    return SettlementStatusChanged(
        settlementId=row["settlement_id"], sessionId=row["session_id"], status=row["status"], at=row["updated_at"],
        amount=row["amount"], currency=row["currency"], energyWh=row["energy_wh"],
    )


async def create(conn: asyncpg.Connection, prices: Sequence[store.Price]) -> None:
    """The one Pending settlement of each newly priced session, announced."""
    rows = await store.create_settlements(conn, prices)
    await enqueue_domain_many(conn, store.SCHEMA, [status_changed(r) for r in rows])


async def move(conn: asyncpg.Connection, settlement_id: UUID, wanted: Request) -> tuple[asyncpg.Record, str]:
    """Move a settlement (locked by the caller) as `wanted` and announce it; returns the row and
    the announcement's message id."""
    row = await store.change_status(conn, settlement_id, wanted.status, chain=wanted.chain, tx_hash=wanted.tx_hash,
                                    external_ref=wanted.external_ref, error=wanted.error)
    return row, await enqueue_domain(conn, store.SCHEMA, status_changed(row))
