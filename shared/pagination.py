"""Keyset pagination: the cursor carries the sort key of the last item returned, so pages stay
stable while rows are inserted. Queries fetch `limit + 1` rows to know whether a next page exists."""
from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from shared.errors import InvalidCursor


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="allow")
    limit: Annotated[int, Field(ge=1, le=500)] = 50
    cursor: Annotated[str, Field(min_length=1, max_length=500)] | None = None


def encode_cursor(sort_value: datetime | int | str, row_id: Any) -> str:
    value = sort_value.isoformat() if isinstance(sort_value, datetime) else sort_value
    return base64.urlsafe_b64encode(orjson.dumps([value, str(row_id)])).decode().rstrip("=")


def decode_cursor(cursor: str, *, time_key: bool = True, id_type: Callable[[str], Any] = str) -> tuple[Any, Any]:
    """(sort value, id as `id_type`) from a cursor; InvalidCursor for anything we did not issue."""
    try:
        value, row_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if time_key:
            value = datetime.fromisoformat(value)
            if value.tzinfo is None:
                raise ValueError
        return value, id_type(str(row_id))
    except Exception:
        raise InvalidCursor() from None


def after_key(cursor: str | None, list_name: str) -> str | None:
    """Where a list ordered by one text key goes on (its `page` key: `(list_name, the row's key)`):
    the last key returned, None for the first page; InvalidCursor for a cursor of another list."""
    if not cursor:
        return None
    name, key = decode_cursor(cursor, time_key=False)
    if name != list_name:
        raise InvalidCursor()
    return key


def page(rows: Sequence[Any], limit: int, render: Callable[[Any], dict], key: Callable[[Any], tuple[Any, Any]]) -> dict:
    """The list response from `limit + 1` fetched rows."""
    items = rows[:limit]
    next_cursor = encode_cursor(*key(items[-1])) if len(rows) > limit and items else None
    return {"items": [render(r) for r in items], "nextCursor": next_cursor}
