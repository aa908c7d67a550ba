"""`GET /docs`: the API browsable, a Swagger UI of `/openapi.json` served from the bundled
swagger-ui files (`/docs/{asset}`), with nothing fetched from elsewhere."""
from __future__ import annotations

from aiohttp import web
from swagger_ui_bundle import swagger_ui_path

from shared.errors import NotFound

ASSETS = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "application/javascript",
          "swagger-ui-standalone-preset.js": "application/javascript"}
PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="UTF-8"><title>CPMS core API</title><link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/swagger-ui-standalone-preset.js"></script>
<script>
window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset], layout: "StandaloneLayout"});
</script>
</body>
</html>
"""


async def docs_page(request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html")


async def docs_asset(request: web.Request) -> web.Response:
    name = request.match_info["asset"]
    if name not in ASSETS:
        raise NotFound(f"no asset {name!r} in the API browser", title="Asset not found")
    return web.Response(body=(swagger_ui_path / name).read_bytes(), content_type=ASSETS[name],
                        headers={"Cache-Control": "public, max-age=86400"})
