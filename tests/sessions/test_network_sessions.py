"""GET /v1/sessions (CONTRACT section 8): every session of the network, newest first, with
charger, site, status, idTag and date filters; `Accept: text/csv` streams all of them."""
from __future__ import annotations

import csv
import io
import uuid

from tests.ingest import gateway_events as ev
from tests.sessions.flows import applied, send
from tests.support import unique_id

DAY1, DAY2 = "2026-11-25T10:00:00Z", "2026-11-26T10:00:00Z"


async def sessions_page(api, query: str = "") -> tuple[int, dict]:
    return await api.admin("GET", f"/v1/sessions{query}")


async def test_filters_page_and_export_the_networks_sessions(make_api, connect_db):
    api = await make_api()
    pg = await connect_db(api)
    _, site = await api.admin("POST", "/v1/sites", {"name": "Depot"})
    on_site, elsewhere = unique_id("NET"), unique_id("NET")
    await api.admin("POST", "/v1/chargers", {"chargePointId": on_site, "secret": "a-secret-of-ours", "siteId": site["siteId"]})
    ids = []
    for cp, tx, ts, tag in ((on_site, 1, DAY1, "RFID-A"), (on_site, 2, DAY2, "RFID-B"), (elsewhere, 1, DAY2, "RFID-A")):
        start = ev.started(cp, tx, ts=ts) | {"idTag": tag}
        ids += await send(api, start)
    ids += await send(api, ev.ended(on_site, 1, meter_stop=700, ts="2026-11-25T11:00:00Z"))
    await applied(pg, ids)

    status, everything = await sessions_page(api)
    assert status == 200 and [(s["chargePointId"], s["transactionId"]) for s in everything["items"]][:3] in (
        [(on_site, 2), (elsewhere, 1), (on_site, 1)], [(elsewhere, 1), (on_site, 2), (on_site, 1)])
    assert [s["startedAt"] for s in everything["items"]] == sorted((s["startedAt"] for s in everything["items"]), reverse=True)

    async def keys(query: str) -> set[tuple[str, int]]:
        status, body = await sessions_page(api, query)
        assert status == 200, body
        return {(s["chargePointId"], s["transactionId"]) for s in body["items"]}

    assert await keys(f"?chargePointId={on_site}") == {(on_site, 1), (on_site, 2)}
    assert await keys(f"?siteId={site['siteId']}") == {(on_site, 1), (on_site, 2)}
    assert await keys(f"?chargePointId={on_site}&status=Finalized") == {(on_site, 1)}
    assert await keys(f"?chargePointId={elsewhere}&idTag=RFID-A") == {(elsewhere, 1)}
    assert await keys(f"?siteId={site['siteId']}&from=2026-11-26T00:00:00Z") == {(on_site, 2)}
    assert await keys(f"?siteId={site['siteId']}&to=2026-11-26T00:00:00Z") == {(on_site, 1)}

    first = await sessions_page(api, f"?siteId={site['siteId']}&limit=1")
    second = await sessions_page(api, f"?siteId={site['siteId']}&limit=1&cursor={first[1]['nextCursor']}")
    assert [s["transactionId"] for s in first[1]["items"] + second[1]["items"]] == [2, 1] and second[1]["nextCursor"] is None

    response = await api.client.get(f"/v1/sessions?siteId={site['siteId']}",
                                    headers={"Authorization": "Bearer test-admin-token", "Accept": "text/csv"})
    assert response.status == 200 and response.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert [(r["chargePointId"], r["transactionId"], r["status"], r["energyWh"]) for r in rows] == [
        (on_site, "2", "Active", ""), (on_site, "1", "Finalized", "700")]
    assert list(rows[0]) == list(everything["items"][0])  # the columns are the JSON field names


async def test_bad_filters_are_400_naming_the_field(api):
    for query, field in (("?idTag=" + "x" * 21, "idTag"), ("?status=Done", "status"), ("?from=yesterday", "from"),
                         ("?siteId=not-a-uuid", "siteId"), ("?to=2026-11-25T10:00:00", "to"), ("?bogus=1", "bogus")):
        status, body = await sessions_page(api, query)
        assert status == 400 and ["query", field] in [e["loc"] for e in body["errors"]], (query, body)


async def test_a_site_that_does_not_exist_is_a_400_for_sessions_and_settlements(api):
    unknown = uuid.uuid4()
    for path in ("/v1/sessions", "/v1/settlements"):
        status, body = await api.admin("GET", f"{path}?siteId={unknown}")
        assert status == 400 and [e["loc"] for e in body["errors"]] == [["query", "siteId"]], (path, body)


async def test_settlements_export_as_csv(api):
    response = await api.client.get("/v1/settlements?status=Confirmed",
                                    headers={"Authorization": "Bearer test-admin-token", "Accept": "text/csv"})
    assert response.status == 200 and response.content_type == "text/csv"
    header = (await response.text()).splitlines()[0].split(",")
    assert header[:3] == ["settlementId", "sessionId", "chargePointId"]
