"""Read your writes (CONTRACT section 3): once a registration or a change to it has answered,
every GET on that charger answers with what was written, in both layouts: one process, and one
process per service (each with its own copy, kept by messages)."""
from __future__ import annotations

import uuid

import pytest

from tests.support import Api, unique_id


async def per_service(make_api) -> dict[str, Api]:
    """ingest, sessions and billing as separate processes on one database and one broker prefix."""
    prefix = f"ryw-{uuid.uuid4().hex[:6]}-"
    ingest = await make_api(["ingest"], prefix_suffix=prefix)
    others = {name: await make_api([name], prefix_suffix=prefix, database_url=ingest.database_url)
              for name in ("sessions", "billing")}
    return {"ingest": ingest, **others}


async def one_process(make_api) -> dict[str, Api]:
    api = await make_api()
    return {"ingest": api, "sessions": api, "billing": api}


@pytest.mark.parametrize("layout", [one_process, per_service], ids=["one-process", "per-service"])
async def test_every_read_answers_with_what_was_just_written(make_api, layout):
    apis = await layout(make_api)
    ingest, sessions, billing = apis["ingest"], apis["sessions"], apis["billing"]
    _, site = await billing.admin("POST", "/v1/sites", {"name": "Depot"})
    for _ in range(5):  # not a lucky race: every time
        cp = unique_id("RYW")
        status, registered = await ingest.admin("POST", "/v1/chargers", {"chargePointId": cp, "secret": "a-secret-of-ours"})
        assert status == 201, registered
        status, charger = await sessions.admin("GET", f"/v1/chargers/{cp}")
        assert status == 200 and charger["chargePointId"] == cp and charger["isActive"] is True, charger
        assert (await sessions.admin("GET", f"/v1/chargers/{cp}/connectors"))[0] == 200
        assert (await sessions.admin("GET", f"/v1/chargers/{cp}/sessions"))[0] == 200

        assert (await ingest.admin("PUT", f"/v1/chargers/{cp}/active", {"isActive": False}))[0] == 200
        status, charger = await sessions.admin("GET", f"/v1/chargers/{cp}")
        assert status == 200 and charger["isActive"] is False

        assert (await billing.admin("PUT", f"/v1/chargers/{cp}/site", {"siteId": site["siteId"]}))[0] == 200
        status, charger = await sessions.admin("GET", f"/v1/chargers/{cp}")
        assert status == 200 and charger["siteId"] == site["siteId"]


async def test_a_registration_naming_a_site_shows_it_at_once(make_api):
    api = await make_api()
    _, site = await api.admin("POST", "/v1/sites", {"name": "Harbour"})
    cp = unique_id("RYW")
    body = {"chargePointId": cp, "secret": "a-secret-of-ours", "siteId": site["siteId"]}
    assert (await api.admin("POST", "/v1/chargers", body))[0] == 201
    status, charger = await api.admin("GET", f"/v1/chargers/{cp}")
    assert status == 200 and charger["siteId"] == site["siteId"]
