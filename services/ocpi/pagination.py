"""Paginated OCPI lists (transport_and_format.asciidoc, "Pagination"): `offset` (default 0),
`limit` (capped at CPMS_OCPI_PAGE_LIMIT), `date_from` (last_updated at or after, inclusive) and
`date_to` (before, exclusive); the answer carries `X-Total-Count` (objects matching), `X-Limit`
(the most one page holds here) and, while more follow, `Link: <next page>; rel="next"`."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.ocpi.transport import base_url, ok, validated
from shared.app import SETTINGS


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    offset: Annotated[int, Field(ge=0, le=2**31)] = 0
    limit: Annotated[int, Field(ge=1, le=2**31)] | None = None
    date_from: AwareDatetime | None = None
    date_to: AwareDatetime | None = None


@dataclass(frozen=True)
class Page:
    """What a paginated GET asks for: pass it to the store, then answer with `page_response`."""

    offset: int
    limit: int
    date_from: datetime | None
    date_to: datetime | None


def page_of(request: web.Request) -> Page:
    """The request's page: 2001 (HTTP 400) for an offset, limit or date that is not one."""
    query = validated(PageQuery, dict(request.query))
    most = request.app[SETTINGS].ocpi_page_limit
    return Page(query.offset, min(query.limit or most, most), query.date_from, query.date_to)


def page_response(request: web.Request, page: Page, items: Sequence[Any], total: int) -> web.Response:
    """A 1000 envelope with `items` and the pagination headers."""
    headers = {"X-Total-Count": str(total), "X-Limit": str(page.limit)}
    following = page.offset + len(items)
    if items and following < total:
        query = {k: v for k, v in request.query.items() if k not in ("offset", "limit")}
        query.update(offset=str(following), limit=str(page.limit))
        url = request.url.with_query(query)
        headers["Link"] = f'<{base_url(request)}{url.raw_path_qs}>; rel="next"'
    return ok(list(items), headers=headers)
