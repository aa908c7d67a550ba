"""Roaming partners' tokens as idTags (CONTRACT 12, OCPI 2.2.1 mod_tokens): the verdict a stored
token gives by its `whitelist` and `valid`, the real-time authorization asked of the ocpi service
where the token (or an unknown idTag) needs it, the copy of the partners' tokens, and the sessions
that wait for a real-time answer.

An idTag on the operators' list is decided by that list alone (section 7); the partners' tokens
decide the others. WhitelistType (OCPI 2.2.1 mod_tokens "WhitelistType enum"): ALWAYS and ALLOWED
are decided from the stored token, ALLOWED_OFFLINE too (CONTRACT 12); NEVER is asked of its eMSP
every time, and an unknown idTag of every partner that offers real-time authorization. No answer
within 5 s is Invalid."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
from aiohttp import web

from services.sessions import metrics, store
from shared.app import POOL, SETTINGS, unit_of_work
from shared.consumer import Message
from shared.domain import PartnerTokenChanged, PartnerTokenRef, RealtimeAuthorizers
from shared.events import ID_TAG_MAX
from shared.periodic import every
from shared.realtime_authorization import REALTIME_AUTHORIZER, AuthorizationAnswer, RealtimeAuthorizer

log = logging.getLogger(__name__)

ASK = "ask"  # the verdict is the partner's answer in real time
UNKNOWN = "Unknown"  # no partner knows the idTag: CPMS_AUTHORIZATION decides, as for any unlisted idTag
NO_ANSWER = "Invalid"  # CONTRACT 12: a partner that does not answer within the bound
REASK_AFTER_SECONDS = 30.0  # a question still open after this was lost with the process that asked


def stored_verdict(token: asyncpg.Record) -> str:
    """What a partner's stored token says by itself, or ASK when its whitelist wants the eMSP asked.
    An invalidated token (`valid: false`) is Blocked."""
    if token["whitelist"] == "NEVER":
        return ASK
    return "Accepted" if token["valid"] else "Blocked"


def answered_verdict(answer: AuthorizationAnswer | None) -> str:
    return NO_ANSWER if answer is None else answer.status


@dataclass(frozen=True)
class Question:
    """A session whose authorization waits for a partner's answer in real time."""

    session_id: UUID
    id_tag: str
    charge_point_id: str
    connector_id: int | None
    known: PartnerTokenRef | None


async def first_judgments(conn: asyncpg.Connection, rows: Sequence[asyncpg.Record]) -> tuple[dict[UUID, str | None], list[Question]]:
    """For started sessions whose idTag is not on the operators' list: the partner's verdict (None:
    not a partner's token, nobody to ask; ASK: waiting for the real-time answer), recording the
    first judgment of those judged now; and the questions to ask."""
    verdicts: dict[UUID, str | None] = {}
    new = [r for r in rows if r["partner_verdict"] is None and r["realtime_asked_at"] is None and r["id_tag"]]
    for row in rows:
        if row["partner_verdict"] is not None:
            verdicts[row["session_id"]] = row["partner_verdict"]
        elif row["realtime_asked_at"] is not None:
            verdicts[row["session_id"]] = ASK
    if not new:
        return verdicts, []
    tokens = await store.partner_tokens.tokens_for(conn, [r["id_tag"] for r in new])
    realtime = None  # asked of the database once, when an unknown idTag needs it
    judged: list[tuple[UUID, PartnerTokenRef | None, str | None, bool]] = []
    questions = []
    for row in new:
        token = tokens.get(store.partner_tokens.uid_key(row["id_tag"]))
        ref = store.partner_tokens.ref_of(token) if token is not None else None
        if token is not None:
            verdict = stored_verdict(token)
        else:
            if realtime is None:
                realtime = await store.partner_tokens.anyone_authorizes_realtime(conn)
            verdict = ASK if realtime and len(row["id_tag"]) <= ID_TAG_MAX else None
        verdicts[row["session_id"]] = verdict
        if verdict is not None:
            asking = verdict == ASK
            judged.append((row["session_id"], ref, None if asking else verdict, asking))
            if asking:
                questions.append(Question(row["session_id"], row["id_tag"], row["charge_point_id"], row["connector_id"], ref))
    await store.partner_tokens.record_partner_judgments(conn, judged)
    return verdicts, questions


async def authorize_now(pool: asyncpg.Pool, authorizer: RealtimeAuthorizer, *, id_tag: str, charge_point_id: str,
                        connector_id: int | None) -> str | None:
    """A gateway's question about an idTag not on the operators' list: the partner's verdict now
    (UNKNOWN when no partner knows it), None when it is no partner's and nobody is asked. No
    database connection is held while the partner is asked."""
    async with pool.acquire() as conn:
        token = (await store.partner_tokens.tokens_for(conn, [id_tag])).get(store.partner_tokens.uid_key(id_tag))
        realtime = token is None and await store.partner_tokens.anyone_authorizes_realtime(conn)
    if token is not None:
        verdict = stored_verdict(token)
        if verdict != ASK:
            return verdict
    elif not realtime:
        return None
    ref = store.partner_tokens.ref_of(token) if token is not None else None
    verdict, _ = await _ask(authorizer, id_tag, charge_point_id, connector_id, ref)
    return verdict


async def _ask(authorizer: RealtimeAuthorizer, id_tag: str, charge_point_id: str, connector_id: int | None,
               known: PartnerTokenRef | None) -> tuple[str, PartnerTokenRef | None]:
    """The verdict, and the token of the partner that gave it."""
    answer = await authorizer.ask(id_tag, charge_point_id=charge_point_id, connector_id=connector_id, known=known)
    verdict = answered_verdict(answer)
    metrics.REALTIME_AUTHORIZATIONS.labels("no_answer" if answer is None else verdict).inc()
    return verdict, answer.partnerToken if answer is not None else None


# --- the copy of the partners' tokens -------------------------------------------------------------

async def apply_partner_tokens(conn: asyncpg.Connection, message: Message) -> None:
    if message.routing_key == PartnerTokenChanged.routing_key:
        changed = await store.partner_tokens.record_token(conn, PartnerTokenChanged.model_validate(message.body))
    elif message.routing_key == RealtimeAuthorizers.routing_key:
        changed = await store.partner_tokens.record_authorizers(conn, RealtimeAuthorizers.model_validate(message.body))
    else:
        log.warning("unexpected partner token message ignored", extra={"routing_key": message.routing_key})
        return
    metrics.PARTNER_TOKEN_UPDATES.labels(message.routing_key, "applied" if changed else "stale").inc()


# --- sessions waiting for a real-time answer -------------------------------------------------------

class RealtimeJudge:
    """Asks, outside any transaction, the questions of the sessions judged in a committed batch;
    records each answer and judges its session again (a stop when it is not Accepted)."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self._tasks: set[asyncio.Task] = set()

    def ask(self, questions: list[Question] | None) -> None:
        for question in questions or ():
            task = asyncio.create_task(self._settle(question), name=f"sessions:realtime:{question.session_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _settle(self, question: Question) -> None:
        from services.sessions.authorization import judge_sessions, policy_of  # it imports this module
        from services.sessions.finalization import refinalize

        verdict, answer_token = await _ask(self.app[REALTIME_AUTHORIZER], question.id_tag, question.charge_point_id,
                                           question.connector_id, question.known)
        try:
            async with unit_of_work(self.app, store.SCHEMA) as conn:
                if await store.partner_tokens.record_realtime_answer(conn, question.session_id, verdict, answer_token):
                    await judge_sessions(conn, [question.session_id], policy_of(self.app[SETTINGS]))
                    await refinalize(conn, [question.session_id])
        except Exception as exc:  # the database away: the sweep asks again
            log.warning("real-time answer not recorded", extra={"session_id": str(question.session_id), "error": repr(exc)})

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)


REALTIME_JUDGE = web.AppKey("realtime_judge", RealtimeJudge)


async def realtime_judge_ctx(app: web.Application):
    judge = app[REALTIME_JUDGE] = RealtimeJudge(app)
    yield
    await judge.close()


async def _ask_again(app: web.Application) -> None:
    async with app[POOL].acquire() as conn:
        rows = await store.partner_tokens.still_waiting(
            conn, asked_before=datetime.now(UTC) - timedelta(seconds=REASK_AFTER_SECONDS), limit=100)
    app[REALTIME_JUDGE].ask([Question(*store.partner_tokens.realtime_question(row)) for row in rows])


lost_questions_sweeper = every("sessions:realtime-sweep", lambda app: REASK_AFTER_SECONDS / 2, _ask_again)
