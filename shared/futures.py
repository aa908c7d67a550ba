"""A future that several paths may answer (a batch's outcome reaching each request that waits on
it): the first answer stands, later ones change nothing."""
from __future__ import annotations

import asyncio


def settle(future: asyncio.Future, error: BaseException | None = None) -> None:
    """Answer `future` with None, or with `error`, unless it was answered (or cancelled) already."""
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
