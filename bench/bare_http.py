"""`python -m bench.bare_http PORT`: the HTTP framework with nothing behind it. It answers each
gateway event POST the way ingest does (JSON read, 202 with a small JSON body) but validates,
publishes and stores nothing: the floor any aiohttp service pays per request on this machine."""
from __future__ import annotations

import sys

import orjson
from aiohttp import web


async def receive(request: web.Request) -> web.Response:
    event = orjson.loads(await request.read())
    body = orjson.dumps({"accepted": True, "type": event.get("type"), "eventId": event.get("eventId")})
    return web.Response(body=body, status=202, content_type="application/json")


def main() -> None:
    try:
        import uvloop

        uvloop.install()  # as `cpms run` does
    except ImportError:
        pass
    app = web.Application()
    app.router.add_post("/v1/gateway/events", receive)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
