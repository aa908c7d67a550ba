"""Who may charge: an idTag's OCPP 1.6 idTagInfo from its token as it stood at one instant.

The same rule answers a gateway that asks (`POST /v1/gateway/authorize`, judged now) and records
a session's `authorization` (judged at the session's start), so the two never disagree."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

import asyncpg

from services.sessions import metrics, roaming, store
from services.sessions.store import SCHEMA
from shared.config import SessionsSettings
from shared.domain import SessionUnauthorized
from shared.events import start_instant
from shared.outbox import enqueue_domain_many

TokenStatus = Literal["Accepted", "Blocked", "Expired"]
AuthorizationStatus = Literal["Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx"]
Mode = Literal["open", "list"]  # CPMS_AUTHORIZATION: what an idTag missing from the list gets


@dataclass(frozen=True)
class TokenState:
    """A token as written at some moment (a row of `tokens` or of `token_versions`)."""

    status: TokenStatus
    expires_at: datetime | None
    parent_id_tag: str | None
    site_ids: tuple[UUID, ...] | None
    max_concurrent_sessions: int | None

    @classmethod
    def of(cls, row: Mapping[str, Any] | None) -> TokenState | None:
        """The state in a row; None for no row or a deleted version (the idTag was not listed)."""
        if row is None or row.get("deleted"):
            return None
        sites = row["site_ids"]
        return cls(row["status"], row["expires_at"], row["parent_id_tag"],
                   tuple(sites) if sites is not None else None, row["max_concurrent_sessions"])

    def own_status(self, at: datetime) -> TokenStatus:
        if self.status == "Accepted" and self.expires_at is not None and self.expires_at <= at:
            return "Expired"
        return self.status


@dataclass(frozen=True)
class IdTagInfo:
    status: AuthorizationStatus
    expiry_date: datetime | None = None
    parent_id_tag: str | None = None

    def body(self) -> dict[str, Any]:
        info: dict[str, Any] = {"status": self.status}
        if self.expiry_date is not None:
            info["expiryDate"] = self.expiry_date
        if self.parent_id_tag is not None:
            info["parentIdTag"] = self.parent_id_tag
        return info


def decide(
    token: TokenState | None, parent: TokenState | None, *, mode: Mode, at: datetime, site_id: UUID | None,
    concurrent_sessions: int, partner_verdict: str | None = None,
) -> IdTagInfo:
    """OCPP 1.6 semantics: an unlisted tag is Accepted (`open`) or Invalid (`list`), unless it is a
    roaming partner's token (`partner_verdict`: services/sessions/roaming.py); a listed one
    is its own status, Expired once `expiresAt` has passed, its parent's status when the parent is
    not Accepted, Invalid at a site outside its `siteIds`, and ConcurrentTx when it already has
    `maxConcurrentSessions` sessions going (`concurrent_sessions`)."""
    if token is None:
        if partner_verdict is not None and partner_verdict != roaming.UNKNOWN:
            return IdTagInfo(partner_verdict)  # type: ignore[arg-type]
        return IdTagInfo("Accepted" if mode == "open" else "Invalid")
    status: AuthorizationStatus = token.own_status(at)
    if status == "Accepted" and parent is not None:
        status = parent.own_status(at)
    if status == "Accepted" and token.site_ids is not None and site_id not in token.site_ids:
        status = "Invalid"
    if status == "Accepted" and token.max_concurrent_sessions is not None and concurrent_sessions >= token.max_concurrent_sessions:
        status = "ConcurrentTx"
    return IdTagInfo(status, token.expires_at, token.parent_id_tag)


async def _tokens_at_start(conn: asyncpg.Connection, rows: Sequence[asyncpg.Record]) -> list[tuple[datetime, TokenState | None, TokenState | None]]:
    """Per session: the instant its start stands for, and its token and the token's parent as they stood then."""
    instants = [start_instant(r["started_at"]) for r in rows]
    listed = await store.tokens.versions_at(conn, [(r["id_tag"] or "", at) for r, at in zip(rows, instants, strict=True)])
    states = [TokenState.of(v) if r["id_tag"] is not None else None for r, v in zip(rows, listed, strict=True)]
    with_parent = [i for i, state in enumerate(states) if state is not None and state.parent_id_tag]
    parents: dict[int, TokenState | None] = dict(zip(with_parent, map(TokenState.of, await store.tokens.versions_at(
        conn, [(states[i].parent_id_tag, instants[i]) for i in with_parent])), strict=True))
    return [(instants[i], states[i], parents.get(i)) for i in range(len(rows))]


@dataclass(frozen=True)
class Policy:
    """CPMS_AUTHORIZATION and CPMS_UNAUTHORIZED_SESSIONS (`stop`: a remote stop for a session
    that was not Accepted; `flag`: only record it)."""

    mode: Mode = "open"
    stop_unauthorized: bool = True


def policy_of(settings: SessionsSettings) -> Policy:
    return Policy(mode=settings.authorization, stop_unauthorized=settings.unauthorized_sessions == "stop")


async def judge_sessions(conn: asyncpg.Connection, session_ids: Sequence[UUID], policy: Policy) -> list[roaming.Question]:
    """Record the `authorization` of the sessions whose start or end this batch brought (and of the
    later sessions of their idTags they overlap), each by its token as it stood at its start, or,
    for an idTag not on the list, by the roaming partner's token it is; ask once for a stop of each
    one still going that was not Accepted. Returns the sessions whose partner must be asked in real
    time (their authorization waits for the answer: `roaming.RealtimeJudge`)."""
    started = await store.tokens.started_sessions(conn, session_ids)
    if not started:
        return []
    judged = await _tokens_at_start(conn, started)
    partner_verdicts, questions = await roaming.first_judgments(
        conn, [row for row, (_, token, _) in zip(started, judged, strict=True) if token is None])
    # Only a token with a session limit needs its other sessions counted, and the later sessions
    # this one overlaps judged again: for every other idTag a session's status is its own.
    limited = [row["session_id"] for row, (_, token, _) in zip(started, judged, strict=True)
               if token is not None and token.max_concurrent_sessions is not None]
    rows = [(row, seen, 0) for row, seen in zip(started, judged, strict=True) if row["session_id"] not in set(limited)]
    if limited:
        counted = await store.tokens.sessions_to_judge(conn, limited)
        rows += [(row, seen, row["concurrent"]) for row, seen in zip(counted, await _tokens_at_start(conn, counted), strict=True)]
    decided = []
    for row, (at, token, parent), concurrent in rows:
        verdict = partner_verdicts.get(row["session_id"]) if token is None else None
        if verdict == roaming.ASK:
            continue  # its partner is being asked
        info = decide(token, parent, mode=policy.mode, at=at, site_id=row["site_id"], concurrent_sessions=concurrent,
                      partner_verdict=verdict)
        decided.append((row, info.status))
    await store.tokens.record_authorizations(conn, [(row["session_id"], status) for row, status in decided])
    for row, status in decided:
        if row["authorization"] != status:
            metrics.AUTHORIZATIONS.labels("session", status).inc()
    going = [row for row, status in decided
             if status != "Accepted" and row["ended_at"] is None and row["closed_at"] is None and row["stop_requested_at"] is None]
    if not going or not policy.stop_unauthorized:
        return questions
    asked = set(await store.tokens.mark_stop_requested(conn, [row["session_id"] for row in going]))
    status_of = {row["session_id"]: status for row, status in decided}
    now = datetime.now(UTC)
    await enqueue_domain_many(conn, SCHEMA, [
        SessionUnauthorized(sessionId=row["session_id"], chargePointId=row["charge_point_id"],
                            transactionId=row["transaction_id"], authorization=status_of[row["session_id"]], at=now)
        for row in going if row["session_id"] in asked
    ])
    metrics.UNAUTHORIZED_STOPS.inc(len(asked))
    return questions
