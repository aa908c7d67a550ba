"""The edge config in a real nginx, in front of the four services each run alone (`cpms run
<service>` wiring): every route reaches the service that owns it, keys and bodies pass through,
and errors stay the services' problem+json. On its chargers' port, OCPP WebSockets (ws://, and
wss:// with TLS ended at the edge) reach the gateway with their handshake intact; a small
WebSocket server stands in for the gateway's port (what is tested is nginx's part). The
Kubernetes gateway's sidecar takes the gateway's calls to ingest and sessions. Needs the nginx
binary; the routing rules themselves are also checked without it (test_deploy_files.py and
test_kubernetes.py)."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.deploy import deploy_files as files
from tests.support import ADMIN_TOKEN, GATEWAY_KEY, eventually, free_port, unique_id

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


UPSTREAM_HEADER = "add_header X-Upstream-Addr $upstream_addr always;"  # names the upstream that answered


def main_config(directory: Path, http: str) -> Path:
    """An nginx main config that keeps its pid, logs and temp files under `directory`."""
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must read their temp files under tmp_path
    main = directory / "nginx.conf"
    main.write_text(
        f"{user}pid {directory}/nginx.pid;\nerror_log {directory}/error.log;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  client_body_temp_path {directory}/body;\n  proxy_temp_path {directory}/proxy;\n"
        f"{http}\n}}\n"
    )
    return main


def local_config(upstreams: dict[str, int], listen: dict[int, int], directory: Path) -> Path:
    """The edge config as shipped, with its upstreams on this machine's ports (a closed one for
    those not given), its servers on free ports (`listen`: shipped port -> local port), the TLS
    snippets it includes looked for in directory/cpms-tls, and the upstream named in answers."""
    conf = files.edge_conf()
    closed = free_port()
    for name in files.upstream_addresses(conf):
        conf = re.sub(rf"(set\s+\${name}\s+)[\w.-]+:\d+;", rf"\g<1>127.0.0.1:{upstreams.get(name, closed)};", conf)
    for shipped, local in listen.items():
        conf, count = re.subn(rf"listen\s+{shipped};", f"listen 127.0.0.1:{local};", conf)
        assert count == 1, shipped
    conf, count = re.subn(r"include\s+\S+/(\*\.conf);", rf"include {directory}/cpms-tls/\1;", conf)
    assert count == 1
    conf = conf.replace("server_name _;", f"server_name _;\n    {UPSTREAM_HEADER}")
    (directory / "cpms-tls").mkdir(exist_ok=True)
    (directory / "edge.conf").write_text(conf)
    return main_config(directory, f"  include {directory}/edge.conf;")


async def start_nginx(config: Path, directory: Path, url: str) -> asyncio.subprocess.Process:
    """nginx with `config` (checked with -t first), once `url` answers."""
    check = await asyncio.create_subprocess_exec(
        NGINX, "-t", "-p", str(directory), "-c", str(config), "-e", str(directory / "error.log"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await check.communicate()
    assert check.returncode == 0, output.decode()
    process = await asyncio.create_subprocess_exec(
        NGINX, "-p", str(directory), "-c", str(config), "-e", str(directory / "error.log"), "-g", "daemon off;",
    )

    async def listening() -> bool:
        try:
            async with aiohttp.ClientSession() as session, session.get(url) as response:
                return response.status == 200
        except aiohttp.ClientConnectionError:
            return False

    try:
        await eventually(listening)
    except BaseException:
        process.terminate()
        await process.wait()
        raise
    return process


async def stop_nginx(process: asyncio.subprocess.Process) -> None:
    process.terminate()
    await process.wait()


@pytest.fixture
async def edge(make_api, tmp_path: Path) -> AsyncIterator[Edge]:
    apps = {name: await make_api(services=[name]) for name in files.API_SERVICES}
    ports = {name: app.client.server.port for name, app in apps.items()}
    listen = free_port()
    config = local_config(ports, {8081: listen, files.GATEWAY_PORT: free_port()}, tmp_path)
    process = await start_nginx(config, tmp_path, f"http://127.0.0.1:{listen}/livez")
    session = aiohttp.ClientSession()
    try:
        yield Edge(f"http://127.0.0.1:{listen}", {port: name for name, port in ports.items()}, session, apps)
    finally:
        await session.close()
        await stop_nginx(process)


async def test_every_route_of_every_service_reaches_that_service_through_the_edge(edge):
    for service in files.API_SERVICES:
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


# --- the chargers' port: OCPP WebSockets to the gateway ---------------------------------------

@dataclass
class GatewayStandIn:
    """Stands in for the gateway's port: takes OCPP 1.6 WebSockets (subprotocol ocpp1.6), answers
    every call with an empty CallResult, serves /readyz, and keeps each handshake it saw."""
    handshakes: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/ocpp16/{chargePointId}", self.websocket)
        app.router.add_get("/ocpp/{chargePointId}", self.websocket)
        app.router.add_get("/readyz", lambda _: web.json_response({"status": "ready", "standIn": "gateway"}))
        return app

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        self.handshakes.append({"path": request.path, "query": request.query_string, "headers": dict(request.headers)})
        socket_ = web.WebSocketResponse(protocols=("ocpp1.6",))
        await socket_.prepare(request)
        async for message in socket_:
            _, unique_id_, *_ = json.loads(message.data)
            await socket_.send_json([3, unique_id_, {}])
        return socket_


@dataclass
class ChargersEdge:
    ws_url: str
    wss_url: str | None
    api_url: str
    certificate: Path | None
    gateway: GatewayStandIn
    gateway_server: TestServer


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (RSA 2048, as the OCPP security whitepaper's minimum) and its key."""
    certificate, key = directory / "tls.crt", directory / "tls.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(certificate)],
        check=True, capture_output=True, timeout=60,
    )
    return certificate, key


def local_tls_snippet(directory: Path, port: int, certificate: Path, key: Path) -> None:
    """deploy/nginx/ocpp-tls.conf as shipped, on a free port and with this certificate."""
    tls = files.OCPP_TLS_CONF.read_text()
    tls, count = re.subn(r"listen\s+443\s+ssl;", f"listen 127.0.0.1:{port} ssl;", tls)
    assert count == 1
    tls = re.sub(r"(ssl_certificate\s+)\S+;", rf"\g<1>{certificate};", tls)
    tls = re.sub(r"(ssl_certificate_key\s+)\S+;", rf"\g<1>{key};", tls)
    (directory / "cpms-tls" / files.OCPP_TLS_CONF.name).write_text(tls)


@pytest.fixture
async def chargers_edge(tmp_path: Path) -> AsyncIterator[ChargersEdge]:
    """The edge with the gateway stand-in behind it, and its TLS snippet included when openssl can
    make a certificate."""
    gateway = GatewayStandIn()
    server = TestServer(gateway.app())
    await server.start_server()
    api, chargers, tls = free_port(), free_port(), free_port()
    config = local_config({files.GATEWAY: server.port}, {8081: api, files.GATEWAY_PORT: chargers}, tmp_path)
    certificate = None
    if shutil.which("openssl"):
        certificate, key = self_signed_certificate(tmp_path)
        local_tls_snippet(tmp_path, tls, certificate, key)
    process = await start_nginx(config, tmp_path, f"http://127.0.0.1:{chargers}/livez")
    try:
        yield ChargersEdge(
            f"ws://127.0.0.1:{chargers}", f"wss://127.0.0.1:{tls}" if certificate else None,
            f"http://127.0.0.1:{api}", certificate, gateway, server,
        )
    finally:
        await stop_nginx(process)
        await server.close()


needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")


def basic_auth(charger: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{charger}:{secret}".encode()).decode()


async def heartbeat_over(url: str, charger: str, secret: str, **connect) -> tuple[str | None, list, Any]:
    """Connect as a charger (subprotocol ocpp1.6, Basic auth), send one Heartbeat call; the
    subprotocol chosen, the answer, and the TLS connection's ssl object (None over ws://)."""
    async with aiohttp.ClientSession() as session, session.ws_connect(
        url, protocols=("ocpp1.6",), headers={"Authorization": basic_auth(charger, secret)}, **connect,
    ) as websocket:
        await websocket.send_json([2, "hb-1", "Heartbeat", {}])
        answer = await websocket.receive_json(timeout=10)
        return websocket.protocol, answer, websocket.get_extra_info("ssl_object")


@pytest.mark.parametrize("path", ["/ocpp16", "/ocpp"])
async def test_a_chargers_websocket_reaches_the_gateway_with_its_handshake_intact(chargers_edge, path):
    charger = unique_id()
    protocol, answer, _ = await heartbeat_over(f"{chargers_edge.ws_url}{path}/{charger}?secret=q-secret", charger, "b-secret")
    assert protocol == "ocpp1.6"
    assert answer == [3, "hb-1", {}]  # frames pass both ways
    [handshake] = chargers_edge.gateway.handshakes
    assert handshake["path"] == f"{path}/{charger}" and handshake["query"] == "secret=q-secret"
    headers = handshake["headers"]
    assert headers["Authorization"] == basic_auth(charger, "b-secret")
    assert headers["Sec-WebSocket-Protocol"] == "ocpp1.6"
    assert headers["X-Forwarded-For"] == "127.0.0.1"  # the charger's address, for the gateway's remoteAddr
    assert headers["X-Forwarded-Proto"] == "http"


@needs_openssl
async def test_a_charger_connects_over_wss_with_tls_ended_at_the_edge(chargers_edge):
    charger = unique_id()
    trusted = ssl.create_default_context(cafile=str(chargers_edge.certificate))
    protocol, answer, tls = await heartbeat_over(f"{chargers_edge.wss_url}/ocpp16/{charger}", charger, "b-secret", ssl=trusted)
    assert protocol == "ocpp1.6" and answer == [3, "hb-1", {}]
    assert tls.version() in ("TLSv1.2", "TLSv1.3")
    [handshake] = chargers_edge.gateway.handshakes
    assert handshake["headers"]["Authorization"] == basic_auth(charger, "b-secret")  # security profile 2
    assert handshake["headers"]["X-Forwarded-Proto"] == "https"
    # the certificate is the edge's: a charger that does not trust it gets no connection
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await heartbeat_over(f"{chargers_edge.wss_url}/ocpp16/{charger}", charger, "b-secret", ssl=ssl.create_default_context())


@needs_openssl
@pytest.mark.parametrize("suite", ["AES128-GCM-SHA256", "AES256-GCM-SHA384", "ECDHE-RSA-AES128-GCM-SHA256"])
async def test_the_tls_block_speaks_the_suites_chargers_of_profile_2_offer(chargers_edge, suite):
    """A charger with an RSA certificate on the other end offers TLS_RSA_WITH_AES_*_GCM_* (the
    whitepaper's pair) or ECDHE with RSA, over TLS 1.2."""
    context = ssl.create_default_context(cafile=str(chargers_edge.certificate))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(suite)
    charger = unique_id()
    _, answer, tls = await heartbeat_over(f"{chargers_edge.wss_url}/ocpp/{charger}", charger, "b-secret", ssl=context)
    assert answer == [3, "hb-1", {}]
    assert (tls.version(), tls.cipher()[0]) == ("TLSv1.2", suite)


async def test_the_chargers_port_answers_anything_else_itself(chargers_edge):
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{chargers_edge.ws_url.replace('ws://', 'http://')}/v1/sessions") as response:
            assert (response.status, response.content_type) == (404, "application/problem+json")
            assert "X-Upstream-Addr" not in response.headers or response.headers["X-Upstream-Addr"] == ""
        await chargers_edge.gateway_server.close()  # the gateway goes away
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await heartbeat_over(f"{chargers_edge.ws_url}/ocpp16/{unique_id()}", "CP", "secret")
        assert refused.value.status == 503
        assert refused.value.headers["Retry-After"] == "1"
        assert refused.value.headers["Content-Type"] == "application/problem+json"


async def test_the_api_port_reaches_the_gateways_operational_routes_but_not_its_command_route(chargers_edge):
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{chargers_edge.api_url}/gateway/readyz") as response:
            assert response.status == 200 and (await response.json())["standIn"] == "gateway"
        async with session.post(f"{chargers_edge.api_url}/v1/gateway/commands", json={"type": "Reset"}) as response:
            assert (response.status, response.content_type) == (404, "application/problem+json")
            assert response.headers.get("X-Upstream-Addr", "") == ""  # the edge answered: no upstream saw it


# --- the Kubernetes gateway's sidecar ---------------------------------------------------------

def sidecar_config(ports: dict[str, int], listen: int, directory: Path) -> Path:
    """The sidecar's nginx.conf of deploy/kubernetes/gateway.yaml, with the Services on this
    machine's ports, a free listen port, its pid and temp files under `directory`."""
    manifests = yaml.safe_load_all((files.DEPLOY / "kubernetes" / "gateway.yaml").read_text())
    [conf] = [m["data"]["nginx.conf"] for m in manifests if m["kind"] == "ConfigMap" and m["metadata"]["name"] == "cpms-gateway-edge"]
    for service, port in ports.items():
        conf, count = re.subn(rf"server\s+cpms-{service}:\d+;", f"server 127.0.0.1:{port};", conf)
        assert count == 1, service
    conf, count = re.subn(r"listen\s+127\.0\.0\.1:\d+;", f"listen 127.0.0.1:{listen};\n        {UPSTREAM_HEADER}", conf)
    assert count == 1
    conf = conf.replace("/tmp/", f"{directory}/")
    if os.geteuid() == 0:
        conf = "user root;\n" + conf
    path = directory / "sidecar.conf"
    path.write_text(conf)
    return path


async def test_the_gateway_sidecar_sends_its_calls_to_ingest_and_sessions(make_api, tmp_path: Path):
    apps = {name: await make_api(services=[name]) for name in ("ingest", "sessions")}
    ports = {name: app.client.server.port for name, app in apps.items()}
    listen = free_port()
    process = await start_nginx(sidecar_config(ports, listen, tmp_path), tmp_path, f"http://127.0.0.1:{listen}/livez")
    charger = unique_id()
    calls = {
        f"/v1/gateway/chargers/{charger}/auth": ({"presentedSecret": "not-registered"}, 401, {"allowed": False}),
        "/v1/gateway/events": ({"type": "ChargerHeartbeat", "chargePointId": charger}, 202, {"accepted": True}),
        "/v1/gateway/authorize": ({"chargePointId": charger, "idTag": "RFID-1"}, 200, {"idTagInfo": {"status": "Accepted"}}),
    }
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {GATEWAY_KEY}"}) as session:
            for path, (body, status, expected) in calls.items():
                async with session.post(f"http://127.0.0.1:{listen}{path}", json=body) as response:
                    answer = await response.json(content_type=None)
                    served_by = {port: name for name, port in ports.items()}[int(response.headers["X-Upstream-Addr"].rsplit(":", 1)[1])]
                    template = re.sub(r"/chargers/[^/]+/", "/chargers/CP-1/", path)
                    assert (response.status, served_by) == (status, files.GATEWAY_CALLS[template]), (path, answer)
                    assert expected.items() <= answer.items(), (path, answer)
    finally:
        await stop_nginx(process)
