"""Queues the ingest service consumes: the raw event archive, the horizon its prune obeys, and the
audit entries of every service."""
from __future__ import annotations

import asyncpg

from services.ingest import metrics, store
from services.ingest.audit_trail import record_audit
from services.ingest.retention import record_horizon
from shared.consumer import Message
from shared.service import Consumes
from shared.topology import INGEST_ARCHIVE, INGEST_AUDIT, INGEST_RETENTION


async def archive(conn: asyncpg.Connection, messages: list[Message]) -> None:
    metrics.ARCHIVED.inc(await store.archive_events(conn, messages))


CONSUMERS = (
    Consumes(INGEST_ARCHIVE, archive, inbox=False),  # the archive is keyed by eventId: its own inbox
    Consumes(INGEST_RETENTION, record_horizon),
    Consumes(INGEST_AUDIT, record_audit),
)
