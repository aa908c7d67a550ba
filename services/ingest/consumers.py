"""Queues the ingest service consumes: the raw event archive."""
from __future__ import annotations

import asyncpg

from services.ingest import metrics, store
from shared.consumer import Message


async def archive(conn: asyncpg.Connection, messages: list[Message]) -> None:
    metrics.ARCHIVED.inc(await store.archive_events(conn, messages))
