"""The sites billing announced (`site.created`): a site id given to the sessions service, in a
filter or on a token, must be one of them."""
from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from services.sessions import store
from shared.errors import DomainError


async def require_known(conn: asyncpg.Connection, site_ids: Sequence[UUID], *, loc: tuple, each: bool = False) -> None:
    """A 400 naming the field at `loc` (and the position of each unknown id when `each`) unless every site exists."""
    unknown = set(await store.chargers.unknown_sites(conn, site_ids))
    if unknown:
        errors = [{"loc": [*loc, i] if each else list(loc), "msg": f"no site {site_id}"}
                  for i, site_id in enumerate(site_ids) if site_id in unknown]
        raise DomainError(f"unknown site: {', '.join(sorted(map(str, unknown)))}", title="Unknown site", errors=errors)
