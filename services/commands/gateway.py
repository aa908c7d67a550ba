"""The gateway's command API as the reference gateway speaks it, and what each answer means
for delivery: delivered, refused, worth another try, or unknown (the charger may have acted)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
import orjson

Result = Literal["acked", "rejected", "unavailable", "timeout", "unknown"]
_RETRYABLE_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True)
class Outcome:
    result: Result
    http_status: int | None = None
    response: Any = None
    gateway_command_id: str | None = None
    error: str | None = None


class GatewayClient:
    """Sends one command to `POST {base_url}/v1/gateway/commands`, never retrying by itself."""

    def __init__(self, session: aiohttp.ClientSession, *, base_url: str, api_key: str | None, timeout_seconds: float) -> None:
        self.session = session
        self.url = f"{base_url.rstrip('/')}/v1/gateway/commands"
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)

    async def send(self, *, command_type: str, charge_point_id: str, idempotency_key: str, payload: dict) -> Outcome:
        body = {"type": command_type, "chargePointId": charge_point_id, "idempotencyKey": idempotency_key, "payload": payload}
        try:
            async with self.session.post(self.url, json=body, headers=self.headers, timeout=self.timeout) as answer:
                text = await answer.text()
                return _outcome_of(answer.status, text)
        except aiohttp.ClientConnectorError as exc:  # no connection: the gateway never saw the request
            return Outcome("unavailable", error=f"gateway unreachable: {exc.os_error or exc}")
        except TimeoutError:
            return Outcome("timeout", error="outcome unknown: the gateway did not answer in time")
        except aiohttp.ClientError as exc:  # the connection broke after the request left
            return Outcome("unknown", error=f"outcome unknown: {type(exc).__name__}")


def _outcome_of(status: int, text: str) -> Outcome:
    if 200 <= status < 300:
        try:
            answer = orjson.loads(text) if text else {}
        except orjson.JSONDecodeError:
            answer = {}
        answer = answer if isinstance(answer, dict) else {}
        command_id = answer.get("commandId")
        return Outcome("acked", status, answer.get("response"), str(command_id) if command_id is not None else None)
    detail = _error_text(text)
    if status in _RETRYABLE_STATUSES:
        return Outcome("unavailable", status, error=f"gateway answered {status}: {detail}")
    if 400 <= status < 500:
        return Outcome("rejected", status, error=f"gateway refused the command ({status}): {detail}")
    # Any other answer: the gateway may have passed the command on before it failed.
    return Outcome("unknown", status, error=f"outcome unknown: gateway answered {status}: {detail}")


def _error_text(text: str) -> str:
    """The gateway's error message: `error`/`detail` of a JSON body, or the text, shortened."""
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict):
        for key in ("error", "detail", "message", "title"):
            if isinstance(body.get(key), str):
                return body[key][:500]
    return (text.strip() or "no detail")[:500]
