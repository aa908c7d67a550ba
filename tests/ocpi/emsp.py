"""An eMSP for the tests, over real HTTP: its own versions and version details, its credentials
endpoint (so the CPMS can register with it) and RECEIVER endpoints for every module the CPMS
pushes to, which record what they are sent. It registers with the CPMS the way an eMSP does
(`register_with`) and calls the CPMS's endpoints with its token C (`get`, `call`).

    emsp = Emsp(); await emsp.start(); ...; await emsp.unregister(); await emsp.close()   (or the `emsp` fixture)
    await emsp.register_with(created["versionsUrl"], created["tokenA"])
    status, body, headers = await emsp.get("/ocpi/2.2.1/locations", base=cpo_url)
    emsp.pushes("locations")  -> [Push(method, path, body, headers), ...] in the order received
    emsp.down = True          -> every request answers HTTP 503 until set back
"""
from __future__ import annotations

import asyncio
import base64
import secrets
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

COUNTRY_CODE, PARTY_ID = "DE", "EMS"
TOKEN = web.RequestKey("emsp_token", str)
RECEIVER_MODULES = ("locations", "tariffs", "sessions", "cdrs")
SENDER_MODULES = ("tokens", "commands")


def token_header(token: str) -> str:
    return "Token " + base64.b64encode(token.encode()).decode()


def envelope(data: Any = None, status_code: int = 1000, message: str = "Success") -> dict[str, Any]:
    return {"data": data, "status_code": status_code, "status_message": message, "timestamp": "2026-01-01T00:00:00Z"}


@dataclass(frozen=True)
class Push:
    method: str
    path: str  # below the module's endpoint: "/NL/CPM/LOC1" or "/NL/CPM/LOC1/EVSE1"
    body: Any
    headers: dict[str, str]


@dataclass
class Emsp:
    name: str = "Test eMSP"
    down: bool = False
    # What the CPMS answered us: our token to call it with (token C), its versions URL and endpoints.
    cpo_token: str | None = None
    cpo_endpoints: dict[tuple[str, str], str] = field(default_factory=dict)
    received: list[tuple[str, Push]] = field(default_factory=list)  # (module, push) in arrival order
    # Real-time authorization (our Tokens SENDER, POST {tokens}/{uid}/authorize): the AuthorizationInfo
    # `allowed` of each uid we know (its Token from `tokens`); any other uid answers 404 / 2004.
    # `silent`: we take the request and never answer in time.
    authorizations: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, dict] = field(default_factory=dict)
    silent: bool = False
    refuse: set[str] = field(default_factory=set)  # modules whose pushes get status 2001
    credentials_calls: list[tuple[str, str]] = field(default_factory=list)  # (method, token) on our credentials
    _tokens: set[str] = field(default_factory=set)  # tokens we accept from the CPMS (B, or C after it registered with us)
    _token_a: str | None = None  # ours, for the CPMS to register with us
    _runner: web.AppRunner | None = None
    url: str = ""

    # --- life cycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/ocpi/versions", self._versions)
        app.router.add_get("/ocpi/2.2.1", self._details)
        app.router.add_route("*", "/ocpi/2.2.1/credentials", self._credentials)
        for module in RECEIVER_MODULES + SENDER_MODULES:
            app.router.add_route("*", f"/ocpi/emsp/2.2.1/{module}{{tail:.*}}", self._module(module))
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def versions_url(self) -> str:
        return f"{self.url}/ocpi/versions"

    def issue_token_a(self) -> str:
        """A token A of ours, for the CPMS to register with us (`POST /v1/ocpi/partners/{id}/register`)."""
        self._token_a = secrets.token_urlsafe(16)
        return self._token_a

    def pushes(self, module: str) -> list[Push]:
        return [push for m, push in self.received if m == module]

    # --- the eMSP's endpoints -------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler) -> web.StreamResponse:
        if self.down:
            return web.Response(status=503, text="down")
        token = _token_of(request)
        allowed = set(self._tokens)
        if self._token_a and (request.path.endswith("/credentials") or request.path in ("/ocpi/versions", "/ocpi/2.2.1")):
            allowed.add(self._token_a)
        if token is None or token not in allowed:
            return web.json_response(envelope(None, 2000, "unauthorized"), status=401)
        request[TOKEN] = token
        return await handler(request)

    async def _versions(self, request: web.Request) -> web.Response:
        return web.json_response(envelope([{"version": "2.2.1", "url": f"{self.url}/ocpi/2.2.1"}]))

    async def _details(self, request: web.Request) -> web.Response:
        endpoints = [{"identifier": "credentials", "role": "SENDER", "url": f"{self.url}/ocpi/2.2.1/credentials"}]
        endpoints += [{"identifier": m, "role": "RECEIVER", "url": f"{self.url}/ocpi/emsp/2.2.1/{m}"} for m in RECEIVER_MODULES]
        endpoints += [{"identifier": m, "role": "SENDER", "url": f"{self.url}/ocpi/emsp/2.2.1/{m}"} for m in SENDER_MODULES]
        return web.json_response(envelope({"version": "2.2.1", "endpoints": endpoints}))

    def credentials(self, token: str) -> dict[str, Any]:
        return {"token": token, "url": self.versions_url, "roles": [
            {"role": "EMSP", "business_details": {"name": self.name}, "party_id": PARTY_ID, "country_code": COUNTRY_CODE}]}

    async def _credentials(self, request: web.Request) -> web.Response:
        """The CPMS registers with us: it POSTs its token B with our token A; we read its versions
        with token B, as the server of the handshake must, and answer our token C for it."""
        self.credentials_calls.append((request.method, request[TOKEN]))
        if request.method == "GET":
            return web.json_response(envelope(self.credentials(request[TOKEN])))
        if request.method == "DELETE":
            self._tokens.discard(request[TOKEN])
            return web.json_response(envelope())
        body = await request.json()
        async with aiohttp.ClientSession() as session:
            async with session.get(body["url"], headers={"Authorization": token_header(body["token"])}) as response:
                versions = await response.json()
            if versions.get("status_code") != 1000:
                return web.json_response(envelope(None, 3001, "could not read the CPO's versions"))
            details_url = next(v["url"] for v in versions["data"] if v["version"] == "2.2.1")
            async with session.get(details_url, headers={"Authorization": token_header(body["token"])}) as response:
                details = await response.json()
        self.cpo_endpoints = {(e["identifier"], e["role"]): e["url"] for e in details["data"]["endpoints"]}
        self.cpo_token = body["token"]
        token_c = secrets.token_urlsafe(16)
        self._tokens.discard(request[TOKEN])
        if request[TOKEN] == self._token_a:
            self._token_a = None
        self._tokens.add(token_c)
        return web.json_response(envelope(self.credentials(token_c)))

    def _module(self, module: str):
        async def receive(request: web.Request) -> web.Response:
            body = await request.json() if request.can_read_body else None
            self.received.append((module, Push(request.method, request.match_info["tail"], body, dict(request.headers))))
            if module == "tokens" and request.method == "POST" and request.match_info["tail"].endswith("/authorize"):
                return await self._authorize(request.match_info["tail"].split("/")[-2])
            if module in self.refuse:
                return web.json_response(envelope(None, 2001, "refused by the test"), status=400)
            return web.json_response(envelope())

        return receive

    async def _authorize(self, uid: str) -> web.Response:
        if self.silent:
            await asyncio.sleep(8)  # past the CPMS's 5 s bound
        if uid not in self.authorizations:
            return web.json_response(envelope(None, 2004, "unknown token"), status=404)
        return web.json_response(envelope({"allowed": self.authorizations[uid], "token": self.tokens.get(uid)}))

    def authorize_calls(self) -> list[str]:
        """The uids the CPMS asked us to authorize, in order."""
        return [push.path.split("/")[-2] for push in self.pushes("tokens")
                if push.method == "POST" and push.path.endswith("/authorize")]

    # --- the eMSP as a client of the CPMS -------------------------------------------------------

    async def register_with(self, versions_url: str, token_a: str) -> tuple[int, dict[str, Any]]:
        """The registration an eMSP starts: read the CPMS's versions and details with token A, then
        POST our credentials (a new token B) to its credentials endpoint; keep its token C."""
        status, versions, _ = await self.call("GET", versions_url, token=token_a)
        assert status == 200 and versions["status_code"] == 1000, versions
        details_url = next(v["url"] for v in versions["data"] if v["version"] == "2.2.1")
        status, details, _ = await self.call("GET", details_url, token=token_a)
        assert status == 200, details
        self.cpo_endpoints = {(e["identifier"], e["role"]): e["url"] for e in details["data"]["endpoints"]}
        token_b = secrets.token_urlsafe(16)
        self._tokens.add(token_b)
        status, answer, _ = await self.call("POST", self.cpo_endpoints[("credentials", "SENDER")], token=token_a,
                                            json=self.credentials(token_b))
        if status == 200 and answer.get("status_code") == 1000:
            self.cpo_token = answer["data"]["token"]
        return status, answer

    async def update_credentials(self) -> tuple[int, dict[str, Any]]:
        """PUT new credentials (a new token B) with our current token C; keep the new token C."""
        token_b = secrets.token_urlsafe(16)
        self._tokens.add(token_b)
        status, answer, _ = await self.call("PUT", self.cpo_endpoints[("credentials", "SENDER")], json=self.credentials(token_b))
        if status == 200 and answer.get("status_code") == 1000:
            self.cpo_token = answer["data"]["token"]
        return status, answer

    async def unregister(self) -> None:
        """DELETE our credentials at the CPMS when we hold a token of it (either handshake), so a
        partner of a finished test is not left registered there. Already gone (our token refused,
        401) or never registered (405) is fine."""
        url = self.cpo_endpoints.get(("credentials", "SENDER")) or self.cpo_endpoints.get(("credentials", "RECEIVER"))
        if self.cpo_token is None or url is None:
            return
        status, answer, _ = await self.call("DELETE", url)
        assert status in (401, 405) or (status == 200 and answer["status_code"] == 1000), (status, answer)
        self.cpo_token = None

    async def call(self, method: str, url: str, *, token: str | None = None, json: Any = None,
                   headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
        """One request to the CPMS with `token` (default: our token C), base64 encoded."""
        sent = {"Authorization": token_header(token or self.cpo_token or "")}
        sent.update(headers or {})
        async with aiohttp.ClientSession() as session:
            async with session.request(method, url, json=json, headers=sent) as response:
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    body = await response.text()
                return response.status, body, dict(response.headers)


def _token_of(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme != "Token" or not value:
        return None
    try:
        return base64.b64decode(value, validate=True).decode()
    except ValueError:
        return None
