"""`GET /docs`: the API browsable without a key and without fetching anything from elsewhere."""
from __future__ import annotations

import re


async def test_the_api_browser_loads_its_own_files_and_this_document(api):
    response = await api.client.get("/docs")
    assert response.status == 200 and response.content_type == "text/html"
    page = await response.text()
    assert "/openapi.json" in page and not re.search(r"https?://", page)  # nothing from a CDN
    for asset in re.findall(r'(?:href|src)="(/docs/[^"]+)"', page):
        served = await api.client.get(asset)
        assert served.status == 200 and len(await served.read()) > 1000, asset
    missing = await api.client.get("/docs/nothing.js")
    assert missing.status == 404 and missing.content_type == "application/problem+json"
