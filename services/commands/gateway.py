"""The gateway's command API as the reference gateway and the CPMS's own gateway speak it, and
what each answer means for delivery: delivered, refused (by the gateway, or by the charger with
a CallError), worth another try, or unknown (the charger may have acted)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
import orjson

Result = Literal["acked", "rejected", "call_error", "unavailable", "timeout", "unknown"]
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
    answer = _json_object(text)
    gateway_command_id = str(answer["commandId"]) if answer.get("commandId") is not None else None
    if 200 <= status < 300:
        return Outcome("acked", status, answer.get("response"), gateway_command_id)
    if status == 422 and (call_error := _call_error(answer)) is not None:
        described = f": {call_error['errorDescription'][:500]}" if call_error["errorDescription"] else ""
        return Outcome("call_error", status, call_error, gateway_command_id,
                       error=f"the charger answered CallError {call_error['errorCode'][:100]}{described}")
    detail = _error_text(text)
    if status in _RETRYABLE_STATUSES:
        return Outcome("unavailable", status, error=f"gateway answered {status}: {detail}")
    if 400 <= status < 500:
        return Outcome("rejected", status, error=f"gateway refused the command ({status}): {detail}")
    # Any other answer: the gateway may have passed the command on before it failed.
    return Outcome("unknown", status, error=f"outcome unknown: gateway answered {status}: {detail}")


def _json_object(text: str) -> dict[str, Any]:
    try:
        body = orjson.loads(text) if text else {}
    except orjson.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}


def _call_error(answer: dict[str, Any]) -> dict[str, Any] | None:
    """What the charger said in its CallError, from the gateway's 422 problem (`errorCode`,
    `errorDescription`, `errorDetails`); None for a 422 without an error code."""
    code, description, details = answer.get("errorCode"), answer.get("errorDescription"), answer.get("errorDetails")
    if not isinstance(code, str) or not code:
        return None
    return {"errorCode": code, "errorDescription": description if isinstance(description, str) else "",
            "errorDetails": details if isinstance(details, dict) else {}}


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
