"""The deployment files agree with the code: the compose file runs real `cpms` commands with
settings the CPMS reads, the image runs `cpms` as a non-root user, the edge sends every route to
the service that owns it, Prometheus scrapes every service, and every metric a dashboard panel
queries is one the running CPMS exports."""
from __future__ import annotations

import asyncio
import re
import shutil
import socket
import subprocess
import sys
import tomllib

import pytest
import yaml

from services.cli import _parser
from services.catalogue import SERVICES
from shared.config import Settings, parse_listen_addr
from tests.deploy import deploy_files as files

INFRASTRUCTURE = {"postgres", "rabbitmq", "migrate", "edge", "prometheus", "grafana"}
REQUIRED_ENV = {
    "CPMS_DATABASE_URL", "CPMS_AMQP_URL", "CPMS_API_KEY", "CPMS_ADMIN_TOKEN",
    "GATEWAY_BASE_URL", "GATEWAY_API_KEY", "CPMS_LOG_LEVEL",
}
SETTINGS_ALIASES = {field.alias for field in Settings.model_fields.values() if field.alias}


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


# --- docker compose ---------------------------------------------------------------------------

def test_compose_has_every_service_and_the_infrastructure(services):
    assert set(services) >= set(SERVICES) | INFRASTRUCTURE
    assert set(files.cpms_containers(services)) == set(SERVICES) | {"migrate"}
    assert 8081 in files.published_ports(services["edge"])
    assert 9090 in files.published_ports(services["prometheus"])
    assert 3000 in files.published_ports(services["grafana"])


def test_each_service_container_runs_its_own_service_on_its_own_port(services, image_entrypoint):
    for name in SERVICES:
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
            try:
                args = _parser().parse_args(argv[1:])
            except SystemExit:
                pytest.fail(f"{name}: `{' '.join(argv)}` is not a cpms command line")
            ran.append((args.command, getattr(args, "service", None)))
    assert ("migrate", []) in ran
    assert "seed-charger" in {command for command, _ in ran}
    assert {service for command, service in ran if command == "run"} == set(SERVICES)


def test_migrations_and_seeding_finish_before_any_service_starts(services):
    migrate = services["migrate"]
    assert migrate.get("restart") == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in SERVICES:
        depends_on = services[name]["depends_on"]
        assert depends_on["migrate"]["condition"] == "service_completed_successfully"
        assert depends_on["postgres"]["condition"] == "service_healthy"
        assert depends_on["rabbitmq"]["condition"] == "service_healthy"
    for name in SERVICES:
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
    for name in SERVICES:
        test = services[name]["healthcheck"]["test"]
        assert test[0] == "CMD" and test[1] == "python"
        assert test[2] == "/opt/cpms/healthcheck.py" and test[3] == "/readyz"


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
    ports = {parse_listen_addr(Settings().listen_addr_of(name))[1] for name in ("all", *SERVICES)}
    assert exposed == ports
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
    "/v1/no-such-thing": "sessions",
    "/": "sessions",
    "/livez": "edge",
}


def edge_choice(path: str, method: str = "GET") -> str:
    conf = files.edge_conf()
    location = files.pick_location(files.locations(conf), path)
    assert location is not None, f"no location of the edge matches {path}"
    by_method = files.method_maps(conf).get(location.upstream)
    return by_method.get(method, by_method["default"]) if by_method else location.upstream


@pytest.mark.parametrize("path, owner", OWNERS.items())
def test_edge_sends_each_public_path_to_its_owner(path, owner):
    method, _, path = path.rpartition(" ")
    assert edge_choice(path, method or "GET") == owner


@pytest.mark.parametrize("service", list(SERVICES))
def test_edge_sends_every_route_a_service_serves_to_that_service(service):
    routes = files.routes_of(service)
    assert routes, f"{service} registers no routes"
    for method, template in routes:
        for sample in ("CP-1", "0b7c6c1e-51f4-4c43-9a8e-3a0c1b4f52aa", "site"):
            path = files.concrete(template, sample)
            assert edge_choice(path, method) == service, f"{method} {path} ({template})"


@pytest.mark.parametrize("service", list(SERVICES))
@pytest.mark.parametrize("operational", ["livez", "readyz", "healthz", "metrics", "openapi.json"])
def test_edge_reaches_each_services_own_operational_routes_by_its_name(service, operational):
    conf = files.edge_conf()
    location = files.pick_location(files.locations(conf), f"/{service}/{operational}")
    assert location is not None and location.upstream == service
    assert re.search(rf"proxy_pass\s+http://\${service}/\$1;", location.body), location.body


def test_edge_describes_the_whole_public_api_at_openapi_json():
    location = files.pick_location(files.locations(files.edge_conf()), "/openapi.json")
    assert location is not None and "openapi.json?scope=public" in location.body


def test_edge_upstreams_are_the_compose_services_on_their_ports(services):
    conf = files.edge_conf()
    assert len(files.locations(conf)) == len(re.findall(r"^\s*location\s", conf, flags=re.M)), "a location block was not read"
    upstreams = files.upstream_addresses(conf)
    assert set(upstreams) == set(SERVICES)
    for name, address in upstreams.items():
        host, port = address.split(":")
        assert host == name and int(port) == service_port(services[name], name)
    mounted = [v for v in services["edge"]["volumes"] if v.startswith("./deploy/nginx/edge.conf:")]
    assert mounted and mounted[0].split(":")[1] == "/etc/nginx/conf.d/default.conf"


def test_edge_lets_the_app_judge_bodies_and_long_waits():
    conf = files.edge_conf()
    size = files.directive(conf, "client_max_body_size")
    assert size.endswith("m") and int(size[:-1]) * 1024 * 1024 > Settings().max_body_bytes
    read_timeout = files.directive(conf, "proxy_read_timeout")
    assert int(read_timeout.rstrip("s")) > 30  # POST /v1/commands?wait=30
    assert files.directive(conf, "proxy_set_header Authorization") == "$http_authorization"
    assert files.directive(conf, "listen") == "8081"


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
    for name in SERVICES:
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
    exprs = [t["expr"] for panel in files.dashboard_panels() for t in panel["targets"]]
    assert any('queue=~".*\\\\.dlq"' in e for e in exprs), "dead-letter queues need their own panel"


async def test_every_metric_a_dashboard_panel_queries_is_exported(api):
    status, exposition = await api.anonymous("GET", "/metrics")
    assert status == 200
    families = files.exposition_families(exposition)
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
