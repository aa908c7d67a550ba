"""Every matching row as CSV (RFC 4180), for accounting: `Accept: text/csv` on a list route. The
rows come from a server-side cursor (a store's `every_...`, through `shared.db.every_row`) and are
written as they come, so an export of any size holds one chunk of rows in memory, not the whole list."""
from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterable, Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from shared.db import CURSOR_CHUNK_ROWS
from shared.jsonutil import format_ts
from shared.openapi import Body

CSV = "text/csv"
CSV_BODY = Body({"type": "string", "description": "RFC 4180; a header row of the JSON field names"}, media_type=CSV)


def wants_csv(request: web.Request) -> bool:
    return CSV in request.headers.get("Accept", "")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return format_ts(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal | int | float | str):
        return str(value)
    if isinstance(value, list | dict):
        return orjson.dumps(value, default=str).decode()
    return str(value)


async def stream_csv(
    request: web.Request, records: AsyncIterable[Mapping[str, Any]], *,
    columns: Sequence[str], render: Callable[[Mapping[str, Any]], Mapping[str, Any]], filename: str,
) -> web.StreamResponse:
    """Answer with a header row of `columns` (the JSON field names) and one line per record, each
    rendered as the JSON answer would be; a chunk of records is written at a time."""
    response = web.StreamResponse(headers={
        "Content-Type": f"{CSV}; charset=utf-8", "Content-Disposition": f'attachment; filename="{filename}"'})
    await response.prepare(request)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    rows = 0
    async for record in records:
        item = render(record)
        writer.writerow([_cell(item[name]) for name in columns])
        rows += 1
        if rows % CURSOR_CHUNK_ROWS == 0:
            await response.write(buffer.getvalue().encode())
            buffer.seek(0)
            buffer.truncate()
    await response.write(buffer.getvalue().encode())
    await response.write_eof()
    return response
