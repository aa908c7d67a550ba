"""JSON for the wire: decimals as strings, times as RFC 3339 UTC with `Z`; and how deep a JSON text nests."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson


def format_ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _normalise(value: Any) -> Any:
    # orjson writes datetimes itself but keeps the offset as `+00:00`; the contract wants `Z`.
    if isinstance(value, datetime):
        return format_ts(value)
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalise(v) for v in value]
    return value


def dumps(value: Any) -> bytes:
    return orjson.dumps(_normalise(value), default=_default)


loads = orjson.loads


_NOT_STRUCTURE = bytes(byte for byte in range(256) if byte not in b'"[]{}')
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1


def nests_deeper_than(text: bytes, levels: int) -> bool:
    """Whether arrays and objects in the JSON `text` nest more than `levels` deep, read from the
    bytes before any parser recurses into them (brackets inside strings do not count)."""
    if text.count(b"[") + text.count(b"{") <= levels:
        return False
    # Escaped backslashes, then escaped quotes, go first: every quote left opens or closes a string.
    unescaped = text.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside_strings = b"".join(unescaped.translate(None, _NOT_STRUCTURE).split(b'"')[::2])
    depth = 0
    for byte in outside_strings:
        depth += _STEP[byte]
        if depth > levels:
            return True
    return False
