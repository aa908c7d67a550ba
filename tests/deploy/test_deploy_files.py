"""The deployment files agree with the code: the compose file runs real `cpms` commands with
settings the CPMS reads, the image runs `cpms` as a non-root user, the edge sends every route to
the service that owns it and chargers' WebSockets to the gateway, Prometheus scrapes every
service, and every metric a dashboard panel queries is one the running CPMS exports."""
from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from services.cli import _parser
from services.catalogue import SERVICES
from shared.config import GatewaySettings, Settings, parse_listen_addr
from tests.deploy import deploy_files as files

INFRASTRUCTURE = {"postgres", "rabbitmq", "migrate", "edge", "prometheus", "grafana"}
REQUIRED_ENV = {
    "CPMS_DATABASE_URL", "CPMS_AMQP_URL", "CPMS_API_KEY", "CPMS_ADMIN_TOKEN",
    "GATEWAY_BASE_URL", "GATEWAY_API_KEY", "CPMS_LOG_LEVEL",
}
SETTINGS_ALIASES = files.settings_aliases()
DEPLOYED = {*files.API_SERVICES, files.GATEWAY}  # what `cpms run <service>` runs in the deployment


@pytest.fixture(scope="module")
def compose() -> dict:
    return files.compose()


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def image_entrypoint() -> list[str]:
    entrypoint = files.final(files.dockerfile_stages()[-1], "ENTRYPOINT")
    assert entrypoint is not None, "the image has no ENTRYPOINT"
    return entrypoint.exec_form()


def service_port(service: dict, name: str) -> int:
    """The port `cpms run <name>` listens on inside its container, as Settings reads it."""
    return parse_listen_addr(Settings.from_env(service["environment"]).listen_addr_of(name))[1]


def parse_cpms(argv: list[str]) -> argparse.Namespace:
    """`cpms ...` as the CLI reads it."""
    try:
        return _parser().parse_args(argv[1:])
    except SystemExit:
        pytest.fail(f"`{' '.join(argv)}` is not a cpms command line")


# --- docker compose ---------------------------------------------------------------------------

def test_compose_has_every_service_and_the_infrastructure(services):
    assert set(services) >= DEPLOYED | INFRASTRUCTURE
    assert set(files.cpms_containers(services)) == DEPLOYED | {"migrate"}
    assert 8081 in files.published_ports(services["edge"])
    assert files.GATEWAY_PORT in files.published_ports(services["edge"])  # chargers dial the edge
    assert 9090 in files.published_ports(services["prometheus"])
    assert 3000 in files.published_ports(services["grafana"])


def test_each_service_container_runs_its_own_service_on_its_own_port(services, image_entrypoint):
    for name in DEPLOYED:
        service = services[name]
        assert files.cpms_invocations(service, image_entrypoint) == [["cpms", "run", name]]
        port = service_port(service, name)
        assert [str(port)] == [str(p) for p in service.get("expose", [])], name
        assert "ports" not in service, f"{name} is reached through the edge; publishing it would block --scale"


def test_every_container_command_is_a_real_cpms_command(services, image_entrypoint):
    ran = []
    for name, service in files.cpms_containers(services).items():
        for argv in files.cpms_invocations(service, image_entrypoint):
            assert argv[0] == "cpms", f"{name} runs {argv}"
            args = parse_cpms(argv)
            ran.append((args.command, getattr(args, "service", None)))
    assert ("migrate", []) in ran
    assert "seed-charger" in {command for command, _ in ran}
    assert {service for command, service in ran if command == "run"} == DEPLOYED


def test_migrations_and_seeding_finish_before_any_service_starts(services):
    migrate = services["migrate"]
    assert migrate.get("restart") == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in files.API_SERVICES:
        depends_on = services[name]["depends_on"]
        assert depends_on["migrate"]["condition"] == "service_completed_successfully"
        assert depends_on["postgres"]["condition"] == "service_healthy"
        assert depends_on["rabbitmq"]["condition"] == "service_healthy"
    for name in files.API_SERVICES:
        assert services["edge"]["depends_on"][name]["condition"] == "service_healthy"


def test_cpms_containers_set_only_settings_the_cpms_reads(services):
    for name, service in files.cpms_containers(services).items():
        environment = service["environment"]
        assert set(environment) <= SETTINGS_ALIASES, f"{name} sets {set(environment) - SETTINGS_ALIASES}"
        assert REQUIRED_ENV <= set(environment), f"{name} lacks {REQUIRED_ENV - set(environment)}"
        settings = Settings.from_env(environment)  # every default is a valid value
        assert settings.api_key.get_secret_value() == "dev"
        assert settings.admin_token.get_secret_value() == "devadmin"
        assert settings.database_url.startswith("postgresql://") and "@postgres:" in settings.database_url
        assert settings.amqp_url.startswith("amqp://") and "@rabbitmq:" in settings.amqp_url


def test_every_setting_can_be_overridden_from_a_dotenv():
    raw = yaml.safe_load(files.COMPOSE_FILE.read_text())["services"]
    for name in files.cpms_containers(raw):
        for variable, value in raw[name]["environment"].items():
            if variable in REQUIRED_ENV:
                assert str(value).startswith(f"${{{variable}:-"), f"{name}: {variable} is not overridable"


def test_service_health_checks_probe_readiness_with_the_image_probe(services):
    for name in DEPLOYED:
        test = services[name]["healthcheck"]["test"]
        assert test[0] == "CMD" and test[1] == "python"
        assert test[2] == "/opt/cpms/healthcheck.py" and test[3] == "/readyz"


def seconds(duration: str) -> float:
    """A compose or nginx duration (`65s`, `1m30s`, `3600s`, `3600`) in seconds."""
    parts = re.findall(r"(\d+)(h|m|s)?", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(int(n) * {"h": 3600, "m": 60, "s": 1, "": 1}[u] for n, u in parts)


def test_the_gateway_is_reached_through_the_edge_and_reaches_the_cpms_through_it(services):
    gateway, edge = services[files.GATEWAY], services["edge"]
    assert "ports" not in gateway, "chargers reach the gateway through the edge; a published port would block --scale"
    environment = gateway["environment"]
    # its events and handshakes (ingest) and its Authorize questions (sessions) go to one base URL:
    # the edge's API port, which routes each to its owner
    assert environment["CPMS_BASE_URL"] == f"http://edge:{files.directive(api_server(), 'listen')}"
    for path, owner in files.GATEWAY_CALLS.items():
        assert edge_choice(path, "POST") == owner, path
    assert float(environment["CPMS_GATEWAY_HEARTBEAT_SECONDS"]) == files.GATEWAY_HEARTBEAT_SECONDS
    # it starts once the broker and the edge (and so every service behind it) are healthy; the
    # edge finds the gateway's replicas by DNS per request, so it waits for none of them
    assert gateway["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
    assert gateway["depends_on"]["edge"]["condition"] == "service_healthy"
    assert files.GATEWAY not in edge["depends_on"]
    # SIGTERM: in-flight calls answered, then every socket closed with 1001
    assert seconds(gateway["stop_grace_period"]) >= 60


def test_every_service_delivers_commands_to_the_gateway_service_with_its_key(services):
    gateway = services[files.GATEWAY]
    for name, service in files.cpms_containers(services).items():
        environment = service["environment"]
        assert environment["GATEWAY_BASE_URL"] == f"http://{files.GATEWAY}:{service_port(gateway, files.GATEWAY)}", name
        assert environment["GATEWAY_API_KEY"] == gateway["environment"]["GATEWAY_API_KEY"] != "", name


def test_the_tls_override_gives_chargers_wss_at_the_edge():
    override = files.compose(files.COMPOSE_TLS_FILE)["services"]
    assert set(override) == {"edge"}
    assert 443 in files.published_ports(override["edge"])
    mounts = dict(v.split(":")[:2] for v in override["edge"]["volumes"])
    # the snippet lands where the chargers' server includes it, and finds the certificate it names
    [include] = re.findall(r"^\s*include\s+(\S+)\s*;", chargers_server(), flags=re.M)
    snippet = mounts["./deploy/nginx/ocpp-tls.conf"]
    assert Path(snippet).parent == Path(include).parent and Path(snippet).match(Path(include).name)
    tls = files.OCPP_TLS_CONF.read_text()
    assert files.directive(tls, "listen") == "443 ssl"
    certificates = mounts["./tls"]
    for name in ("ssl_certificate", "ssl_certificate_key"):
        assert Path(files.directive(tls, name)).parent == Path(certificates), name


def test_the_tls_snippet_offers_what_ocpp_security_profile_2_asks():
    tls = files.OCPP_TLS_CONF.read_text()
    assert files.directive(tls, "ssl_protocols").split() == ["TLSv1.2", "TLSv1.3"]
    # the four suites the OCPP 1.6 security whitepaper asks of a Central System, by OpenSSL's names
    required = {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "AES128-GCM-SHA256", "AES256-GCM-SHA384"}
    assert required <= set(files.directive(tls, "ssl_ciphers").split(":"))


async def test_the_gateway_reads_and_exports_what_its_deployment_assumes(api):
    fields = GatewaySettings.model_fields.values()
    reads = {field.alias for field in fields if field.alias}
    assert files.GATEWAY_SETTINGS <= reads, files.GATEWAY_SETTINGS - reads
    defaults = {field.alias: field.default for field in fields}
    assert parse_listen_addr(defaults["CPMS_GATEWAY_LISTEN_ADDR"])[1] == files.GATEWAY_PORT
    assert float(defaults["CPMS_GATEWAY_HEARTBEAT_SECONDS"]) == files.GATEWAY_HEARTBEAT_SECONDS
    # the image's probe finds it (it tries every listen address of Settings)
    assert "CPMS_GATEWAY_LISTEN_ADDR" in {field.alias for field in Settings.model_fields.values()}
    _parser().parse_args(["run", files.GATEWAY])
    status, exposition = await api.anonymous("GET", "/metrics")
    assert status == 200
    families = files.exposition_families(exposition)
    assert {name: families.get(name) for name in files.GATEWAY_METRICS} == files.GATEWAY_METRICS


# --- Dockerfile -------------------------------------------------------------------------------

def test_image_runs_cpms_as_a_non_root_user(image_entrypoint):
    stages = files.dockerfile_stages()
    runtime = stages[-1]
    assert runtime[0].args.split()[0] == "python:3.11-slim"
    assert image_entrypoint == ["cpms"]
    assert files.final(runtime, "CMD").exec_form() == ["run", "all"]
    user = files.final(runtime, "USER")
    assert user is not None, "the image runs as root"
    assert user.args.split(":")[0] not in ("root", "0")
    assert runtime.index(user) > max(i for i, ins in enumerate(runtime) if ins.name == "RUN"), \
        "USER must come after the steps that need root"
    # the default command is a real one
    _parser().parse_args(files.final(runtime, "CMD").exec_form())


def test_image_exposes_every_port_and_checks_liveness():
    runtime = files.dockerfile_stages()[-1]
    exposed = {int(p) for ins in runtime if ins.name == "EXPOSE" for p in ins.args.split()}
    ports = {parse_listen_addr(Settings().listen_addr_of(name))[1] for name in ("all", *files.API_SERVICES)}
    assert exposed == ports | {files.GATEWAY_PORT}
    healthcheck = files.final(runtime, "HEALTHCHECK")
    assert healthcheck is not None
    assert '["python", "/opt/cpms/healthcheck.py", "/livez"]' in healthcheck.args
    copied = [ins.args for ins in runtime if ins.name == "COPY"]
    assert "deploy/healthcheck.py /opt/cpms/healthcheck.py" in copied


def test_image_installs_the_package_without_test_extras():
    instructions = [ins for stage in files.dockerfile_stages() for ins in stage]
    installs = [ins.args for ins in instructions if ins.name == "RUN" and "pip install" in ins.args]
    assert any(args.rstrip().endswith("pip install .") for args in installs), installs
    assert not any("[test]" in args or "-e " in args for args in installs)
    # every package pyproject.toml ships is copied into the build
    pyproject = tomllib.loads((files.ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = {ins.args.split()[0] for ins in instructions if ins.name == "COPY" and not ins.args.startswith("--from")}
    assert packages <= copied
    assert any(ins.args.startswith("pyproject.toml ") for ins in instructions if ins.name == "COPY")


def test_dockerignore_keeps_local_state_out_of_the_build_context():
    ignored = {line.strip() for line in (files.ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", ".pytest_cache", ".hypothesis", "bench/results"} <= ignored
    for needed in ("pyproject.toml", "shared", "services", "deploy", "deploy/healthcheck.py"):
        assert needed not in ignored


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _run_healthcheck(env: dict[str, str], path: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(files.HEALTHCHECK), path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return process.returncode, output.decode()


async def test_image_health_probe_finds_the_listening_service(api):
    closed = free_port()
    env = {alias: f"127.0.0.1:{closed}" for alias in SETTINGS_ALIASES if alias.endswith("LISTEN_ADDR")}
    env["CPMS_SESSIONS_LISTEN_ADDR"] = f"127.0.0.1:{api.client.server.port}"
    for path in ("/livez", "/readyz"):
        code, output = await _run_healthcheck(env, path)
        assert code == 0, output
    code, output = await _run_healthcheck({**env, "CPMS_SESSIONS_LISTEN_ADDR": f"127.0.0.1:{closed}"}, "/livez")
    assert code == 1, output
    code, output = await _run_healthcheck(env, "/no-such-route")
    assert code == 1, output


# --- the edge ---------------------------------------------------------------------------------

# What the operations brief fixes, path by path (the table of route ownership).
OWNERS = {
    "/v1/gateway/events": "ingest",
    "/v1/gateway/chargers/CP-1/auth": "ingest",
    "POST /v1/chargers": "ingest",
    "GET /v1/chargers": "sessions",
    "/v1/chargers/CP-1/secret": "ingest",
    "/v1/chargers/CP-1/active": "ingest",
    "/v1/sites": "billing",
    "/v1/sites/5f0e/tariffs": "billing",
    "/v1/sites/5f0e/wallet": "billing",
    "/v1/settlements": "billing",
    "/v1/settlements/abc/submitted": "billing",
    "/v1/chargers/CP-1/site": "billing",
    "/v1/chargers/CP-1": "sessions",
    "/v1/chargers/site": "sessions",  # a charger named "site"
    "/v1/chargers/CP-1/connectors": "sessions",
    "/v1/chargers/CP-1/sessions": "sessions",
    "/v1/sessions/abc": "sessions",
    "/v1/sessions/abc/finalize": "sessions",
    "/v1/commands": "commands",
    "/v1/commands/abc": "commands",
    "/v1/tariffs/5f0e/quote": "billing",
    "/v1/tokens": "sessions",
    "/v1/tokens/RFID-1": "sessions",
    "/v1/gateway/authorize": "sessions",
    "/v1/gateway/commands": "edge",  # the commands service's, inside the network: no public route
    "/v1/no-such-thing": "sessions",
    "/": "sessions",
    "/livez": "edge",
}
API_PORT = 8081


def api_server() -> str:
    return files.server(files.edge_conf(), API_PORT)


def chargers_server() -> str:
    return files.server(files.edge_conf(), files.GATEWAY_PORT)


def edge_choice(path: str, method: str = "GET") -> str:
    """The service the edge's API port sends a request to, or "edge" when it answers itself."""
    conf = files.edge_conf()
    location = files.pick_location(files.locations(api_server()), path)
    assert location is not None, f"no location of the edge matches {path}"
    by_method = files.method_maps(conf).get(location.upstream)
    return by_method.get(method, by_method["default"]) if by_method else location.upstream


@pytest.mark.parametrize("path, owner", OWNERS.items())
def test_edge_sends_each_public_path_to_its_owner(path, owner):
    method, _, path = path.rpartition(" ")
    assert edge_choice(path, method or "GET") == owner


@pytest.mark.parametrize("service", files.API_SERVICES)
def test_edge_sends_every_route_a_service_serves_to_that_service(service):
    routes = files.routes_of(service)
    assert routes, f"{service} registers no routes"
    for method, template in routes:
        for sample in ("CP-1", "0b7c6c1e-51f4-4c43-9a8e-3a0c1b4f52aa", "site"):
            path = files.concrete(template, sample)
            assert edge_choice(path, method) == service, f"{method} {path} ({template})"


@pytest.mark.parametrize(("service", "operational"), [
    *((service, op) for service in files.API_SERVICES for op in ("livez", "readyz", "healthz", "metrics", "openapi.json")),
    *((files.GATEWAY, op) for op in ("livez", "readyz", "healthz", "metrics")),
])
def test_edge_reaches_each_services_own_operational_routes_by_its_name(service, operational):
    location = files.pick_location(files.locations(api_server()), f"/{service}/{operational}")
    assert location is not None and location.upstream == service
    assert re.search(rf"proxy_pass\s+http://\${service}/\$1;", location.body), location.body


def test_edge_describes_the_whole_public_api_at_openapi_json():
    location = files.pick_location(files.locations(api_server()), "/openapi.json")
    assert location is not None and "openapi.json?scope=public" in location.body


def test_edge_upstreams_are_the_compose_services_on_their_ports(services):
    conf = files.edge_conf()
    assert len(files.locations(conf)) == len(re.findall(r"^\s*location\s", conf, flags=re.M)), "a location block was not read"
    upstreams = files.upstream_addresses(conf)
    assert set(upstreams) == DEPLOYED
    for name, address in upstreams.items():
        host, port = address.split(":")
        assert host == name and int(port) == service_port(services[name], name)
    mounted = [v for v in services["edge"]["volumes"] if v.startswith("./deploy/nginx/edge.conf:")]
    assert mounted and mounted[0].split(":")[1] == "/etc/nginx/conf.d/default.conf"


def test_edge_lets_the_app_judge_bodies_and_long_waits():
    conf = api_server()
    size = files.directive(conf, "client_max_body_size")
    assert size.endswith("m") and int(size[:-1]) * 1024 * 1024 > Settings().max_body_bytes
    assert seconds(files.directive(conf, "proxy_read_timeout")) > 30  # POST /v1/commands?wait=30
    assert files.directive(conf, "proxy_set_header Authorization") == "$http_authorization"
    assert files.directive(conf, "listen") == str(API_PORT)


@pytest.mark.parametrize("path", ["/ocpp16/CP-1", "/ocpp/CP-1", "/ocpp16/cp.1:a*b@c+d-e_f"])
def test_the_chargers_port_sends_their_websockets_to_the_gateway(path):
    location = files.pick_location(files.locations(chargers_server()), path)
    assert location is not None and location.upstream == files.GATEWAY
    # the request line as the charger sent it, with its query string (`?secret=`)
    assert re.fullmatch(r"\s*proxy_pass\s+http://\$gateway;\s*", location.body), location.body


@pytest.mark.parametrize("path", ["/v1/sessions", "/v1/gateway/events", "/ocpp16/", "/ocpp16/CP-1/extra", "/metrics"])
def test_the_chargers_port_serves_nothing_but_chargers(path):
    location = files.pick_location(files.locations(chargers_server()), path)
    assert location is not None and location.upstream == "edge", path


def test_the_chargers_port_keeps_websockets_open_and_passes_the_handshake_on():
    conf = chargers_server()
    assert files.directive(conf, "listen") == str(files.GATEWAY_PORT)
    assert files.directive(conf, "proxy_http_version") == "1.1"
    assert files.directive(conf, "proxy_set_header Upgrade") == "$http_upgrade"
    assert files.directive(conf, "proxy_set_header Connection") == "$connection_upgrade"
    assert re.search(r"map\s+\$http_upgrade\s+\$connection_upgrade\s*\{\s*default\s+upgrade;\s*''\s+close;\s*\}", files.edge_conf())
    assert files.directive(conf, "proxy_set_header Authorization") == "$http_authorization"
    assert files.directive(conf, "proxy_set_header X-Forwarded-For") == "$proxy_add_x_forwarded_for"
    assert files.directive(conf, "proxy_set_header X-Forwarded-Proto") == "$scheme"
    assert files.directive(conf, "proxy_buffering") == "off"
    # a silent charger is not cut off between two heartbeats, nor between several
    for timeout in ("proxy_read_timeout", "proxy_send_timeout"):
        assert seconds(files.directive(conf, timeout)) >= 10 * files.GATEWAY_HEARTBEAT_SECONDS, timeout


# --- Prometheus and Grafana -------------------------------------------------------------------

def test_prometheus_scrapes_every_service_on_its_port(services):
    config = yaml.safe_load(files.PROMETHEUS_CONF.read_text())
    assert config["global"]["scrape_interval"] == "5s"
    targets = set()
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            targets.update((job.get("metrics_path", "/metrics"), t) for t in static["targets"])
        for dns in job.get("dns_sd_configs", []):
            targets.update((job.get("metrics_path", "/metrics"), f"{n}:{dns['port']}") for n in dns["names"])
    for name in DEPLOYED:
        assert ("/metrics", f"{name}:{service_port(services[name], name)}") in targets, name
    mounted = [v for v in services["prometheus"]["volumes"] if v.startswith("./deploy/prometheus/prometheus.yml:")]
    assert mounted


def test_grafana_provisions_the_datasource_and_dashboard_the_compose_file_mounts(services):
    datasources = yaml.safe_load((files.GRAFANA / "provisioning/datasources/prometheus.yml").read_text())["datasources"]
    assert [(d["type"], d["url"], d["uid"]) for d in datasources] == [("prometheus", "http://prometheus:9090", "prometheus")]
    providers = yaml.safe_load((files.GRAFANA / "provisioning/dashboards/cpms.yml").read_text())["providers"]
    mounts = dict(v.split(":")[:2] for v in services["grafana"]["volumes"] if v.startswith("./"))
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    assert providers[0]["options"]["path"] == mounts["./deploy/grafana/dashboards"]
    for panel in files.dashboard_panels():
        assert panel["datasource"]["uid"] == "prometheus", panel["title"]
        assert panel["targets"], panel["title"]


def test_dashboard_covers_the_operational_and_domain_metrics():
    used = {name for panel in files.dashboard_panels() for t in panel["targets"] for name in files.metric_names(t["expr"])}
    assert used >= {
        "cpms_ingest_events_total", "cpms_http_requests_total", "cpms_http_request_duration_seconds_bucket",
        "cpms_queue_messages_ready", "cpms_consumer_messages_total", "cpms_consumer_batch_duration_seconds_bucket",
        "cpms_outbox_backlog_messages", "cpms_db_pool_connections_in_use", "cpms_dependency_up",
    }
    domain = {name.split("_")[1] for name in used if name.split("_")[1] in ("sessions", "billing", "commands")}
    assert domain == {"sessions", "billing", "commands"}
    # the gateway: connected chargers, calls by action and outcome, time to ingest's answer,
    # commands by type and outcome, handshakes (refusals among them)
    assert used >= {
        "cpms_gateway_connected_chargers", "cpms_gateway_calls_total", "cpms_gateway_ingest_seconds_bucket",
        "cpms_gateway_commands_total", "cpms_gateway_handshakes_total",
    }
    exprs = [t["expr"] for panel in files.dashboard_panels() for t in panel["targets"]]
    assert any('queue=~".*\\\\.dlq"' in e for e in exprs), "dead-letter queues need their own panel"


async def test_every_metric_a_dashboard_panel_queries_is_exported(api):
    status, exposition = await api.anonymous("GET", "/metrics")
    assert status == 200
    families = files.readable_families(exposition)
    for panel in files.dashboard_panels():
        for target in panel["targets"]:
            names = files.metric_names(target["expr"])
            assert names, f"{panel['title']}: no metric in {target['expr']}"
            missing = {name for name in names if not files.is_exported(name, families)}
            assert not missing, f"panel {panel['title']!r} queries {missing}, which the CPMS does not export"


needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")


@needs_promtool
def test_promtool_accepts_the_prometheus_config():
    result = subprocess.run(["promtool", "check", "config", "--syntax-only", str(files.PROMETHEUS_CONF)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_every_dashboard_expression_is_valid_promql(tmp_path):
    rules = [
        {"record": f"cpms:panel_{n}", "expr": target["expr"].replace("$__rate_interval", "1m")}
        for n, target in enumerate(t for panel in files.dashboard_panels() for t in panel["targets"])
    ]
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_metric_name_extraction_skips_functions_labels_and_keywords():
    expr = ('histogram_quantile(0.99, sum by (le, route) (rate(cpms_a_bucket{x=~"a\\\\.b|up"}[$__rate_interval])))'
            ' / ignoring (status_class) group_left sum without (job) (up) > bool 1e3')
    assert files.metric_names(expr) == {"cpms_a_bucket", "up"}


def test_the_gateway_panels_group_by_the_labels_its_metrics_have():
    grouped: dict[str, set[str]] = {}  # metric -> the labels its panels group by
    for panel in files.dashboard_panels():
        for target in panel["targets"]:
            labels = {label.strip() for by in re.findall(r"\bby\s*\(([^)]*)\)", target["expr"]) for label in by.split(",")}
            for name in files.metric_names(target["expr"]):
                if name.startswith("cpms_gateway_"):
                    grouped.setdefault(name, set()).update(labels)
    assert grouped["cpms_gateway_calls_total"] == {"action", "outcome"}
    assert grouped["cpms_gateway_commands_total"] == {"type", "outcome"}
    assert grouped["cpms_gateway_handshakes_total"] == {"outcome"}
    assert grouped["cpms_gateway_ingest_seconds_bucket"] == {"le"}
    quantiles = {float(q) for panel in files.dashboard_panels() for t in panel["targets"]
                 for q in re.findall(r"histogram_quantile\(([\d.]+),.*\bcpms_gateway_ingest_seconds_bucket\b", t["expr"])}
    assert quantiles == {0.5, 0.99}
