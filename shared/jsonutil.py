"""JSON encoding for the wire: decimals as strings, times as RFC 3339 UTC with `Z`."""
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
