"""The edge config in a real nginx, in front of the four services each run alone (`cpms run
<service>` wiring): every route reaches the service that owns it, keys and bodies pass through,
and errors stay the services' problem+json. Needs the nginx binary; the routing rules themselves
are also checked without it (test_deploy_files.py)."""
from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from services.catalogue import SERVICES
from tests.deploy import deploy_files as files
from tests.support import ADMIN_TOKEN, GATEWAY_KEY, eventually, unique_id

NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.path.exists(p)), None)
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed")


@dataclass
class Edge:
    url: str
    ports: dict[int, str]  # upstream port -> service name
    session: aiohttp.ClientSession
    apps: dict[str, Any]  # service name -> its running Api

    async def call(self, method: str, path: str, *, key: str | None = ADMIN_TOKEN, **kwargs):
        headers = {**kwargs.pop("headers", {}), **({"Authorization": f"Bearer {key}"} if key else {})}
        async with self.session.request(method, self.url + path, headers=headers, **kwargs) as response:
            body = await response.read()
            upstream = response.headers.get("X-Upstream-Addr")
            served_by = self.ports[int(upstream.rsplit(":", 1)[1])] if upstream else "edge"
            return response.status, response.content_type, body, served_by


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def local_config(ports: dict[str, int], listen: int, directory: Path) -> Path:
    """The edge config as shipped, with the services on this machine's ports, a free listen port,
    and a response header naming the upstream that answered."""
    conf = files.edge_conf()
    for name, port in ports.items():
        conf, count = re.subn(rf"(set\s+\${name}\s+)[\w.-]+:\d+;", rf"\g<1>127.0.0.1:{port};", conf)
        assert count == 1, name
    conf, count = re.subn(r"listen\s+8081;", f"listen 127.0.0.1:{listen};", conf)
    assert count == 1
    conf = conf.replace("server_name _;", "server_name _;\n    add_header X-Upstream-Addr $upstream_addr always;", 1)
    (directory / "edge.conf").write_text(conf)
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must read their temp files under tmp_path
    main = directory / "nginx.conf"
    main.write_text(
        f"{user}pid {directory}/nginx.pid;\nerror_log {directory}/error.log;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  client_body_temp_path {directory}/body;\n  proxy_temp_path {directory}/proxy;\n"
        f"  include {directory}/edge.conf;\n}}\n"
    )
    return main


@pytest.fixture
async def edge(make_api, tmp_path: Path) -> AsyncIterator[Edge]:
    apps = {name: await make_api(services=[name]) for name in SERVICES}
    ports = {name: app.client.server.port for name, app in apps.items()}
    listen = free_port()
    config = local_config(ports, listen, tmp_path)
    check = await asyncio.create_subprocess_exec(
        NGINX, "-t", "-p", str(tmp_path), "-c", str(config), "-e", str(tmp_path / "error.log"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await check.communicate()
    assert check.returncode == 0, output.decode()
    process = await asyncio.create_subprocess_exec(
        NGINX, "-p", str(tmp_path), "-c", str(config), "-e", str(tmp_path / "error.log"), "-g", "daemon off;",
    )
    session = aiohttp.ClientSession()
    edge = Edge(f"http://127.0.0.1:{listen}", {port: name for name, port in ports.items()}, session, apps)

    async def listening() -> bool:
        try:
            return (await edge.call("GET", "/livez"))[0] == 200
        except aiohttp.ClientConnectionError:
            return False

    try:
        await eventually(listening)
        yield edge
    finally:
        await session.close()
        process.terminate()
        await process.wait()


async def test_every_route_of_every_service_reaches_that_service_through_the_edge(edge):
    for service in SERVICES:
        for method, template in files.routes_of(service):
            path = files.concrete(template, str(uuid.uuid4()))
            key = GATEWAY_KEY if path.startswith("/v1/gateway/") else ADMIN_TOKEN
            kwargs = {"json": {}} if method in ("POST", "PUT") else {}
            status, content_type, body, served_by = await edge.call(method, path, key=key, **kwargs)
            assert served_by == service, f"{method} {path}: answered by {served_by}"
            assert content_type in ("application/json", "application/problem+json"), (method, path, body)
            assert status != 405, (method, path, body)
            if status == 404:  # an unknown id, not an unknown route
                assert b'"title":"Not Found"' not in body.replace(b" ", b""), (method, path, body)


async def test_operator_calls_pass_through_with_their_key(edge):
    charger = unique_id()
    status, _, body, served_by = await edge.call("POST", "/v1/chargers", json={"chargePointId": charger, "secret": "s3cret-enough"})
    assert (status, served_by) == (201, "ingest"), body
    status, content_type, _, served_by = await edge.call("POST", "/v1/chargers", key=None, json={"chargePointId": unique_id(), "secret": "x"})
    assert (status, content_type, served_by) == (401, "application/problem+json", "ingest")
    status, _, body, served_by = await edge.call("GET", "/v1/commands?limit=0")
    assert (status, served_by) == (400, "commands"), body  # the query string reaches the service
    assert b"limit" in body


async def test_the_edge_answers_liveness_itself_and_leaves_other_errors_to_the_services(edge):
    status, content_type, _, served_by = await edge.call("GET", "/livez", key=None)
    assert (status, content_type, served_by) == (200, "application/json", "edge")
    status, content_type, body, served_by = await edge.call("GET", "/v1/no-such-route")
    assert (status, content_type, served_by) == (404, "application/problem+json", "sessions"), body
    too_big = b'{"x": "' + b"a" * (1024 * 1024 + 512 * 1024) + b'"}'
    status, content_type, body, served_by = await edge.call(
        "POST", "/v1/gateway/events", key=GATEWAY_KEY, data=too_big, headers={"Content-Type": "application/json"},
    )
    assert (status, content_type, served_by) == (413, "application/problem+json", "ingest"), body[:200]


async def test_errors_the_edge_makes_itself_are_problem_json(edge):
    too_big = b'{"x": "' + b"a" * (3 * 1024 * 1024) + b'"}'
    status, content_type, body, served_by = await edge.call(
        "POST", "/v1/gateway/events", key=GATEWAY_KEY, data=too_big, headers={"Content-Type": "application/json"},
    )
    assert (status, content_type, served_by) == (413, "application/problem+json", "edge"), body[:200]
    assert json.loads(body)["status"] == 413

    await edge.apps["commands"].client.close()  # the commands service goes away
    status, content_type, body, served_by = await edge.call("GET", "/v1/commands")
    assert (status, content_type, served_by) == (503, "application/problem+json", "edge"), body
    assert json.loads(body)["title"] == "Service unavailable"
    status, _, _, served_by = await edge.call("GET", f"/v1/chargers/{unique_id()}")
    assert (status, served_by) == (404, "sessions")  # the other services still answer
