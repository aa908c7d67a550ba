"""Queues the ingest service consumes: the raw event archive."""
from __future__ import annotations

import asyncpg

from services.ingest import metrics, store
from shared.consumer import Message
from shared.service import Consumes
from shared.topology import INGEST_ARCHIVE


async def archive(conn: asyncpg.Connection, messages: list[Message]) -> None:
    metrics.ARCHIVED.inc(await store.archive_events(conn, messages))


CONSUMERS = (
    Consumes(INGEST_ARCHIVE, archive, inbox=False),  # the archive is keyed by eventId: its own inbox
)
