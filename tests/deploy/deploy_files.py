"""Readers for the deployment files, so the tests can check them against the code: the compose
file (with its `${VAR:-default}` defaults applied), the Dockerfile's instructions, the edge's
nginx servers and locations (and which one nginx picks for a path), and PromQL metric names."""
from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from services.catalogue import SERVICES
from shared.app import create_app
from shared.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPOSE_TLS_FILE = DEPLOY / "compose.tls.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
EDGE_CONF = DEPLOY / "nginx" / "edge.conf"
OCPP_TLS_CONF = DEPLOY / "nginx" / "ocpp-tls.conf"
PROMETHEUS_CONF = DEPLOY / "prometheus" / "prometheus.yml"
GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "cpms.json"
HEALTHCHECK = DEPLOY / "healthcheck.py"
OPERATIONAL_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/metrics", "/openapi.json", "/docs", "/docs/{asset}"})


# --- the OCPP gateway -------------------------------------------------------------------------

# The gateway (`cpms run gateway`, CONTRACT section 11) is an edge adapter beside the services
# behind the API: it holds chargers' WebSockets, owns no schema, and is deployed and checked on
# its own. The deployment files are checked against these names, and test_deploy_files.py checks
# that they are what the gateway really reads and exports.
GATEWAY = "gateway"
GATEWAY_PORT = 8080
GATEWAY_HEARTBEAT_SECONDS = 300  # CPMS_GATEWAY_HEARTBEAT_SECONDS' default: BootNotification's interval
GATEWAY_SETTINGS = frozenset({
    "CPMS_GATEWAY_LISTEN_ADDR", "CPMS_BASE_URL", "CPMS_API_KEY", "GATEWAY_API_KEY",
    "CPMS_AMQP_URL", "CPMS_AMQP_PREFIX", "CPMS_GATEWAY_HEARTBEAT_SECONDS",
})
GATEWAY_METRICS = {
    "cpms_gateway_connected_chargers": "gauge",
    "cpms_gateway_calls_total": "counter",
    "cpms_gateway_ingest_seconds": "histogram",
    "cpms_gateway_commands_total": "counter",
    "cpms_gateway_handshakes_total": "counter",
}
# The CPMS routes the gateway calls, and the service that answers each (CONTRACT sections 1 and 7).
GATEWAY_CALLS = {
    "/v1/gateway/chargers/CP-1/auth": "ingest",
    "/v1/gateway/events": "ingest",
    "/v1/gateway/authorize": "sessions",
}
API_SERVICES = [name for name in SERVICES if name != GATEWAY]


def settings_aliases() -> set[str]:
    """The environment variables some CPMS process reads."""
    models = [Settings, *(spec.settings for spec in SERVICES.values())]
    aliases = {field.alias for model in models for field in model.model_fields.values() if field.alias}
    return aliases


# --- docker compose ---------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def with_defaults(value: Any) -> Any:
    """The value compose would use with no .env: `${VAR:-default}` -> default, `${VAR}` -> ''."""
    if isinstance(value, str):
        return _VARIABLE.sub(lambda m: m.group(2) or "", value)
    if isinstance(value, list):
        return [with_defaults(v) for v in value]
    if isinstance(value, dict):
        return {k: with_defaults(v) for k, v in value.items()}
    return value


def compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    return with_defaults(yaml.safe_load(path.read_text()))


def cpms_containers(services: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The compose services built from this repository's Dockerfile."""
    return {
        name: service for name, service in services.items()
        if isinstance(service.get("build"), dict) and service["build"].get("dockerfile") == "deploy/Dockerfile"
    }


def cpms_invocations(service: dict[str, Any], image_entrypoint: list[str]) -> list[list[str]]:
    """Every command line a container runs: the image's entrypoint plus `command`, or the
    `&&`-chained commands of an `sh -c` entrypoint."""
    entrypoint = service.get("entrypoint")
    command = service.get("command", [])
    command = shlex.split(command) if isinstance(command, str) else list(command)
    if entrypoint is None:
        return [[*image_entrypoint, *command]]
    if list(entrypoint) == ["sh", "-c"]:
        return [shlex.split(part) for part in command[0].split("&&")]
    return [[*entrypoint, *command]]


def published_ports(service: dict[str, Any]) -> set[int]:
    return {int(str(p).rsplit(":", 1)[-1]) for p in service.get("ports", [])}


# --- Dockerfile -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Instruction:
    name: str
    args: str

    def exec_form(self) -> list[str]:
        return json.loads(self.args)


def dockerfile_stages() -> list[list[Instruction]]:
    """Instructions grouped by stage (each FROM opens one), comments dropped, continuations joined."""
    lines = [line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")]
    text = re.sub(r"\\\n", " ", "\n".join(lines))
    stages: list[list[Instruction]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        name, _, args = line.strip().partition(" ")
        instruction = Instruction(name.upper(), " ".join(args.split()))
        if instruction.name == "FROM":
            stages.append([])
        stages[-1].append(instruction)
    return stages


def final(stage: list[Instruction], name: str) -> Instruction | None:
    found = [i for i in stage if i.name == name]
    return found[-1] if found else None


# --- nginx ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Location:
    modifier: str  # "", "=", "^~", "~", "~*"
    pattern: str
    body: str

    @property
    def upstream(self) -> str:
        """The `$variable` the location proxies to, or "edge" when nginx answers itself."""
        proxied = re.search(r"proxy_pass\s+https?://\$(\w+)(/\S*)?\s*;", self.body)
        if proxied:
            return proxied.group(1)
        assert re.search(r"\breturn\s+\d+", self.body), f"location {self.pattern} neither proxies nor returns"
        return "edge"


def edge_conf() -> str:
    return EDGE_CONF.read_text()


def _block_body(text: str, start: int) -> str:
    """The text between the `{` just before `start` and its closing `}` (quotes and comments skipped)."""
    depth, i = 1, start
    while i < len(text):
        char = text[i]
        if char in "'\"":
            i = text.index(char, i + 1)
        elif char == "#":
            i = text.find("\n", i) if "\n" in text[i:] else len(text)
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start:i]
        i += 1
    raise AssertionError("a block of the nginx config is not closed")


def server(conf: str, port: int) -> str:
    """The body of the `server` block that listens on `port` (`listen 8080;`, `listen 127.0.0.1:8081;`)."""
    for match in re.finditer(r"^\s*server\s*\{", conf, flags=re.M):
        body = _block_body(conf, match.end())
        listens = re.findall(r"^\s*listen\s+(?:[\d.]+:)?(\d+)\b", body, flags=re.M)
        if str(port) in listens:
            return body
    raise AssertionError(f"no server of the nginx config listens on {port}")


def method_maps(conf: str) -> dict[str, dict[str, str]]:
    """`map $request_method $x { GET $sessions; default $ingest; }` -> {"x": {"GET": "sessions", "default": "ingest"}}."""
    maps = {}
    for name, body in re.findall(r"^map\s+\$request_method\s+\$(\w+)\s*\{([^}]*)\}", conf, flags=re.M):
        maps[name] = {method: upstream for method, upstream in re.findall(r"^\s*(\w+)\s+\$(\w+)\s*;", body, flags=re.M)}
    return maps


def locations(conf: str) -> list[Location]:
    body = r"""((?:'[^']*'|"[^"]*"|[^{}'"])*)"""  # braces inside quoted strings do not close a block
    found = re.findall(r"^\s*location\s+(?:(=|\^~|~\*|~)\s+)?(\S+)\s*\{" + body + r"\}", conf, flags=re.M)
    return [Location(modifier, pattern, body) for modifier, pattern, body in found]


def upstream_addresses(conf: str) -> dict[str, str]:
    """`set $ingest ingest:8091;` at server level -> {"ingest": "ingest:8091"} (the same in every server)."""
    addresses: dict[str, str] = {}
    for name, address in re.findall(r"^\s*set\s+\$(\w+)\s+([\w.-]+:\d+)\s*;", conf, flags=re.M):
        assert addresses.setdefault(name, address) == address, f"${name} is {addresses[name]} in one server, {address} in another"
    return addresses


def directive(conf: str, name: str) -> str:
    match = re.search(rf"^\s*{name}\s+([^;]+);", conf, flags=re.M)
    assert match, f"no {name} in the edge config"
    return match.group(1).strip()


def pick_location(locs: list[Location], path: str) -> Location | None:
    """nginx's choice: an exact `=` match; else the longest prefix, which wins outright when it
    is `^~`; else the first regex in order of appearance that matches; else the longest prefix."""
    for loc in locs:
        if loc.modifier == "=" and loc.pattern == path:
            return loc
    prefixes = [loc for loc in locs if loc.modifier in ("", "^~") and path.startswith(loc.pattern)]
    longest = max(prefixes, key=lambda loc: len(loc.pattern), default=None)
    if longest is not None and longest.modifier == "^~":
        return longest
    for loc in locs:
        if loc.modifier in ("~", "~*") and re.search(loc.pattern, path, flags=re.I if loc.modifier == "~*" else 0):
            return loc
    return longest


# --- the services' own routes -----------------------------------------------------------------

def routes_of(service: str) -> list[tuple[str, str]]:
    """(method, route template) of every API route one service registers (`cpms run <service>`)."""
    app = create_app(Settings.from_env({}), [SERVICES[service]])
    routes = set()
    for route in app.router.routes():
        canonical = route.resource.canonical if route.resource is not None else ""
        if route.method != "HEAD" and canonical not in OPERATIONAL_PATHS:
            routes.add((route.method, canonical))
    return sorted(routes)


def concrete(template: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", value, template)


# --- PromQL -----------------------------------------------------------------------------------

_PROMQL_WORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"})


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (not functions, labels, keywords or numbers)."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)  # strings first: they may hold anything
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        word, is_call = match.group(1), match.group(2)
        if not is_call and word not in _PROMQL_WORDS:
            names.add(word)
    return names


def dashboard_panels() -> list[dict[str, Any]]:
    panels = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # collapsed rows hold their panels
    return [p for p in panels if p.get("type") != "row"]


def exposition_families(text: str) -> dict[str, str]:
    """{metric family name: type} from the `# TYPE` lines of a Prometheus text exposition."""
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.M))


def readable_families(exposition: str) -> dict[str, str]:
    """The metric families a dashboard panel or an alert may read: what the CPMS exports (every
    process registers every family, the gateway's too)."""
    return exposition_families(exposition)


def is_exported(name: str, families: dict[str, str]) -> bool:
    if name in families:
        return True
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and families.get(name.removesuffix(suffix)) in ("histogram", "summary"):
            return True
    return False
