"""Start-up that talks: a process waits for Postgres and RabbitMQ for as long as they are away,
one log line per attempt naming the dependency by host:port (never a credential), and gives up
only when a dependency refuses it for good (a wrong password, an unknown role): no retry can
mend that, so it is one clear error and exit code 2."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit

import aiormq.exceptions
import asyncpg

from shared.db import TRANSIENT_BACKOFF

log = logging.getLogger(__name__)
T = TypeVar("T")
EXIT_REFUSED = 2


class DependencyRefused(Exception):
    """A dependency answered and said no to our credentials: retrying changes nothing."""


def address(url: str) -> str:
    """host:port of a URL, without its user or password."""
    parts = urlsplit(url)
    default = {"postgresql": 5432, "postgres": 5432, "amqp": 5672, "amqps": 5671}.get(parts.scheme)
    return f"{parts.hostname or 'localhost'}:{parts.port or default}"


def is_refusal(exc: BaseException) -> bool:
    if isinstance(exc, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError):
        return True  # wrong password; a role that does not exist or may not log in
    if isinstance(exc, aiormq.exceptions.ProbableAuthenticationError):
        return True
    return isinstance(exc, aiormq.exceptions.AMQPConnectionError) and "ACCESS_REFUSED" in str(exc)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def wait_for(dependency: str, url: str, attempt: Callable[[], Awaitable[T]],
                   *, on_waiting: Callable[[], None] = lambda: None) -> T:
    """`attempt()` until it works; between attempts a warning per failure and TRANSIENT_BACKOFF.
    `on_waiting` hears the first failure (the process serves /livez and /readyz meanwhile)."""
    number = 0
    while True:
        number += 1
        try:
            result = await attempt()
        except Exception as exc:
            if is_refusal(exc):
                raise DependencyRefused(f"the {dependency} at {address(url)} refused the connection: {_reason(exc)}") from None
            log.warning(f"waiting for the {dependency} at {address(url)}", extra={
                "dependency": dependency, "address": address(url), "attempt": number, "error": _reason(exc)})
            on_waiting()
            await asyncio.sleep(TRANSIENT_BACKOFF(_Attempt(number)))
            continue
        if number > 1:
            log.info(f"the {dependency} at {address(url)} answers", extra={
                "dependency": dependency, "address": address(url), "attempt": number})
        return result


class _Attempt:
    """What tenacity's wait strategies read of a retry: the attempt number."""

    def __init__(self, number: int) -> None:
        self.attempt_number = number
