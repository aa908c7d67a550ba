"""Futures that another path answers: a batch's outcome reaching each request that waits on it,
or a reply over the broker reaching its asker. The first answer stands; later ones change nothing."""
from __future__ import annotations

import asyncio
import uuid
from typing import Any


def settle(future: asyncio.Future, error: BaseException | None = None, *, result: Any = None) -> None:
    """Answer `future` with `result`, or with `error`, unless it was answered (or cancelled) already."""
    if future.done():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


class AwaitedReplies:
    """Replies awaited by correlation id (a request and its reply over the broker): `expect()` gives
    a new id and the future its reply answers; `answer(id, ...)` settles it, once; `forget(id)` when
    the asker stops waiting, whatever became of it."""

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future] = {}

    def expect(self) -> tuple[str, asyncio.Future]:
        correlation_id = uuid.uuid4().hex
        future = self._waiting[correlation_id] = asyncio.get_running_loop().create_future()
        return correlation_id, future

    def answer(self, correlation_id: str | None, error: BaseException | None = None, *, result: Any = None) -> None:
        future = self._waiting.get(correlation_id or "")
        if future is not None:
            settle(future, error, result=result)

    def forget(self, correlation_id: str) -> None:
        self._waiting.pop(correlation_id, None)
