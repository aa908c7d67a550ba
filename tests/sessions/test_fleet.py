"""GET /v1/chargers (CONTRACT section 8): the fleet at a glance. Each charger with its connectors'
statuses and whether it is online; filters by site, online, registered and a substring of its id;
the unregistered chargers that booted or failed a handshake, with their failure counts."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from tests.ingest import gateway_events as ev
from tests.sessions.flows import applied, send
from tests.support import eventually, unique_id


def now(minus_minutes: int = 0) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minus_minutes)).replace(microsecond=0).isoformat().replace("+00:00", "Z")


async def fleet(api, query: str = "") -> list[dict]:
    status, body = await api.admin("GET", f"/v1/chargers{query}")
    assert status == 200, body
    return body["items"]


async def test_the_fleet_with_connectors_online_and_unregistered_chargers(make_api, connect_db):
    api = await make_api(charger_offline_after_seconds=600)
    pg = await connect_db(api)
    _, site = await api.admin("POST", "/v1/sites", {"name": "Depot"})
    depot, silent, stranger = unique_id("FLEET-DEPOT"), unique_id("FLEET-SILENT"), unique_id("FLEET-STRANGER")
    for cp, site_id in ((depot, site["siteId"]), (silent, None)):
        body = {"chargePointId": cp, "secret": "a-secret-of-ours"} | ({"siteId": site_id} if site_id else {})
        assert (await api.admin("POST", "/v1/chargers", body))[0] == 201
    ids = await send(api, ev.booted(depot, ts=now()), ev.status(depot, 1, "Charging", ts=now()), ev.status(depot, 2, "Available", ts=now()))
    ids += await send(api, ev.booted(stranger, ts=now()))  # booted, never registered
    await applied(pg, ids)
    for _ in range(3):  # a charger nobody registered keeps knocking
        assert (await api.gateway("POST", f"/v1/gateway/chargers/{stranger}/auth", {"presentedSecret": "guess-guess"}))[0] == 401

    everyone = {c["chargePointId"]: c for c in await eventually(lambda: _all_with_failures(api, stranger, 3))}
    assert set(everyone) == {depot, silent, stranger}
    assert [(c["connectorId"], c["status"]) for c in everyone[depot]["connectors"]] == [(1, "Charging"), (2, "Available")]
    assert (everyone[depot]["online"], everyone[silent]["online"], everyone[stranger]["online"]) == (True, False, True)
    assert (everyone[stranger]["registered"], everyone[stranger]["authFailures"]) == (False, 3)
    assert everyone[stranger]["lastAuthFailureAt"] is not None and everyone[depot]["authFailures"] == 0

    assert [c["chargePointId"] for c in await fleet(api, f"?siteId={site['siteId']}")] == [depot]
    assert {c["chargePointId"] for c in await fleet(api, "?online=false")} == {silent}
    assert [c["chargePointId"] for c in await fleet(api, "?registered=false")] == [stranger]
    assert [c["chargePointId"] for c in await fleet(api, "?q=" + silent.lower()[-8:])] == [silent]
    first = await api.admin("GET", "/v1/chargers?limit=2")
    rest = await api.admin("GET", f"/v1/chargers?limit=2&cursor={first[1]['nextCursor']}")
    assert [c["chargePointId"] for c in first[1]["items"] + rest[1]["items"]] == sorted(everyone)


async def _all_with_failures(api, cp: str, failures: int):
    items = await fleet(api)
    return items if any(c["chargePointId"] == cp and c["authFailures"] == failures for c in items) else None


async def test_bad_fleet_filters_are_400_naming_the_field(api):
    for query, field in (("?online=maybe", "online"), ("?siteId=x", "siteId"), ("?registered=1", "registered"),
                         ("?limit=0", "limit"), ("?color=red", "color")):
        status, body = await api.admin("GET", f"/v1/chargers{query}")
        assert status == 400 and ["query", field] in [e["loc"] for e in body["errors"]], (query, body)


async def test_a_site_that_does_not_exist_is_a_400_not_an_empty_fleet(api):
    status, body = await api.admin("GET", f"/v1/chargers?siteId={uuid.uuid4()}")
    assert status == 400 and [e["loc"] for e in body["errors"]] == [["query", "siteId"]], body
    _, site = await api.admin("POST", "/v1/sites", {"name": "Empty lot"})
    status, body = await api.admin("GET", f"/v1/chargers?siteId={site['siteId']}")  # known at once: read your writes
    assert (status, body["items"]) == (200, [])
