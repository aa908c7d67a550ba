"""10,000 seeded random malformed requests against every public route: each is refused with a 4xx
problem+json (never a 5xx), and not one row of any table of any schema changes."""
from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest

from tests.faults.malformed import bad_request
from tests.support import eventually

pytestmark = pytest.mark.faults

REQUESTS = 10_000
IN_FLIGHT = 16
SEED = 20261125


async def snapshot(pg) -> dict[str, tuple[int, int]]:
    """Row count and an order-independent digest of the content of every table of every schema."""
    tables = await pg.fetch(
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
        "AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2")
    state = {}
    for t in tables:
        name = f'"{t["table_schema"]}"."{t["table_name"]}"'
        row = await pg.fetchrow(f"SELECT count(*) AS n, coalesce(sum(hashtext(t::text)::bigint), 0) AS digest FROM {name} t")
        state[name] = (row["n"], row["digest"])
    return state


async def test_ten_thousand_malformed_requests_get_4xx_and_change_nothing(api, pg):
    async def settled():  # earlier tests' messages may still be draining: start from a still database
        first = await snapshot(pg)
        await asyncio.sleep(0.5)
        return first if first == await snapshot(pg) else None

    before = await eventually(settled, timeout=60)
    assert any(name.startswith('"ingest"') for name in before) and len(before) >= 15

    rng = random.Random(SEED)
    requests = [bad_request(rng) for _ in range(REQUESTS)]
    outcomes: Counter = Counter()
    wrong: list[tuple] = []
    pending = iter(requests)

    async def worker() -> None:
        for request in pending:
            response = await api.client.request(request.method, request.path, data=request.data,
                                                headers=request.headers, params=request.params)
            body = await response.read()
            outcomes[(request.kind, response.status)] += 1
            refused = 400 <= response.status < 500 and response.content_type == "application/problem+json"
            if not refused or (await response.json(content_type=None))["status"] != response.status:
                wrong.append((request.kind, request.method, request.path, request.params, (request.data or b"")[:200],
                              response.status, body[:300]))

    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))

    assert sum(outcomes.values()) == REQUESTS
    assert wrong == [], f"{len(wrong)} requests not refused with a 4xx problem, e.g. {wrong[:5]}"
    after = await snapshot(pg)
    changed = {name: (before.get(name), after.get(name)) for name in before.keys() | after.keys() if before.get(name) != after.get(name)}
    assert changed == {}
    by_status = Counter()
    for (_, status), n in outcomes.items():
        by_status[status] += n
    kinds = Counter()
    for (kind, _), n in outcomes.items():
        kinds[kind] += n
    assert {"wrong_method", "unknown_route", "no_key", "wrong_key", "bad_id", "bad_query", "content_type", "bad_json",
            "too_deep", "bad_body", "oversized"} <= set(kinds)
    print(f"malformed: {REQUESTS} requests over {len(before)} tables; by status {dict(sorted(by_status.items()))}; "
          f"by kind {dict(sorted(kinds.items()))}")
