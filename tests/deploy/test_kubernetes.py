"""The Kubernetes manifests (deploy/kubernetes, kustomize) and the alert rules: every resource
the kustomization lists is valid for Kubernetes, each service runs as it does in compose (its
command, its port, probes on /livez and /readyz, resources, a disruption budget and an
autoscaler), the gateway holds chargers' WebSockets through rollouts (a budget, a long grace
period, no autoscaler, an ingress with WebSocket timeouts) and reaches ingest and sessions
through its sidecar, and every alert reads metrics the CPMS exports."""
from __future__ import annotations

import re
import shutil
import subprocess

import kubernetes_validate
import pytest
import yaml

from shared.config import Settings, parse_listen_addr
from tests.deploy import deploy_files as files

KUBERNETES = files.DEPLOY / "kubernetes"
ALERTS = files.DEPLOY / "prometheus" / "alerts.yml"
KUBERNETES_VERSION = "1.30"
CUSTOM_KINDS = {"ServiceMonitor"}  # the Prometheus Operator's; not in Kubernetes' own schemas


def resources() -> list[dict]:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    found = []
    for name in kustomization["resources"]:
        found += [doc for doc in yaml.safe_load_all((KUBERNETES / name).read_text()) if doc]
    return found


def of_kind(kind: str) -> dict[str, dict]:
    return {r["metadata"]["name"]: r for r in resources() if r["kind"] == kind}


def test_every_file_of_the_directory_is_in_the_kustomization():
    listed = set(yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())["resources"])
    assert listed == {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}


@pytest.mark.parametrize("resource", resources(), ids=lambda r: f"{r['kind']}/{r['metadata']['name']}")
def test_each_resource_is_valid_for_kubernetes(resource):
    if resource["kind"] in CUSTOM_KINDS:
        assert resource["apiVersion"] == "monitoring.coreos.com/v1" and resource["spec"]["endpoints"]
        return
    kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("service", files.API_SERVICES)
def test_each_service_is_a_deployment_with_probes_resources_a_budget_and_an_autoscaler(service):
    name = f"cpms-{service}"
    deployment = of_kind("Deployment")[name]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["run", service]
    port = parse_listen_addr(getattr(Settings(), f"{service}_listen_addr"))[1]
    assert container["ports"][0]["containerPort"] == port
    assert {e["name"]: e["value"] for e in container["env"]} == {f"CPMS_{service.upper()}_LISTEN_ADDR": f":{port}"}
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert {ref.get("configMapRef", ref.get("secretRef"))["name"] for ref in container["envFrom"]} == {"cpms-config", "cpms-secrets"}
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    # the grace period covers the process's own 30 s drain
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > 30
    assert of_kind("Service")[name]["spec"]["ports"][0]["port"] == port
    budget = of_kind("PodDisruptionBudget")[name]
    assert budget["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    autoscaler = of_kind("HorizontalPodAutoscaler")[name]
    assert autoscaler["spec"]["scaleTargetRef"]["name"] == name
    assert autoscaler["spec"]["minReplicas"] >= budget["spec"]["minAvailable"] + 1


def test_the_migrate_job_and_the_settings_are_what_the_cpms_reads():
    [job] = of_kind("Job").values()
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    aliases = files.settings_aliases()
    for kind, resource in (("ConfigMap", of_kind("ConfigMap")["cpms-config"]), ("Secret", of_kind("Secret")["cpms-secrets"])):
        keys = set(resource.get("data", {})) | set(resource.get("stringData", {}))
        assert keys <= aliases, f"{kind} sets what the CPMS does not read: {keys - aliases}"
    secrets = of_kind("Secret")["cpms-secrets"]["stringData"]
    assert {"CPMS_DATABASE_URL", "CPMS_AMQP_URL", "CPMS_API_KEY", "CPMS_ADMIN_TOKEN", "GATEWAY_API_KEY"} <= set(secrets)
    assert secrets["GATEWAY_API_KEY"], "the gateway's command route needs a key"


def test_the_service_monitor_scrapes_every_service():
    monitor = of_kind("ServiceMonitor")["cpms"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    for service in of_kind("Service").values():
        assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == "http"


# --- the gateway ---------------------------------------------------------------------------------

def gateway_pod() -> dict:
    return of_kind("Deployment")["cpms-gateway"]["spec"]["template"]["spec"]


def test_the_gateway_is_a_deployment_with_probes_resources_and_a_budget():
    deployment = of_kind("Deployment")["cpms-gateway"]
    pod = gateway_pod()
    [container] = pod["containers"]
    assert container["args"] == ["run", files.GATEWAY]
    assert container["ports"] == [{"name": "http", "containerPort": files.GATEWAY_PORT}]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert parse_listen_addr(env["CPMS_GATEWAY_LISTEN_ADDR"])[1] == files.GATEWAY_PORT
    assert {ref.get("configMapRef", ref.get("secretRef"))["name"] for ref in container["envFrom"]} == {"cpms-config", "cpms-secrets"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    # rollouts start a replica before one goes, so dropped chargers have somewhere to reconnect
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    service = of_kind("Service")["cpms-gateway"]
    assert service["spec"]["ports"] == [{"name": "http", "port": files.GATEWAY_PORT, "targetPort": "http"}]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    budget = of_kind("PodDisruptionBudget")["cpms-gateway"]
    assert budget["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert deployment["spec"]["replicas"] >= budget["spec"]["minAvailable"] + 1


def test_the_gateway_closes_its_sockets_before_it_is_killed_and_is_not_autoscaled():
    pod = gateway_pod()
    [container] = pod["containers"]
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    # the endpoints go first (preStop), then SIGTERM: in-flight calls answered, sockets closed with 1001
    assert pod["terminationGracePeriodSeconds"] >= 60 > int(pre_stop[1]) + 30
    # a new replica would take only new sockets, and each scale-down cuts the sockets of one
    scaled = {a["spec"]["scaleTargetRef"]["name"] for a in of_kind("HorizontalPodAutoscaler").values()}
    assert "cpms-gateway" not in scaled


def test_the_commands_service_delivers_to_the_gateway_service():
    config = of_kind("ConfigMap")["cpms-config"]["data"]
    port = of_kind("Service")["cpms-gateway"]["spec"]["ports"][0]["port"]
    assert config["GATEWAY_BASE_URL"] == f"http://cpms-gateway:{port}"
    assert float(config["CPMS_GATEWAY_HEARTBEAT_SECONDS"]) == files.GATEWAY_HEARTBEAT_SECONDS


def sidecar_conf() -> str:
    return of_kind("ConfigMap")["cpms-gateway-edge"]["data"]["nginx.conf"]


def test_the_gateway_reaches_ingest_and_sessions_through_its_sidecar():
    pod = gateway_pod()
    [sidecar] = pod["initContainers"]
    assert sidecar["restartPolicy"] == "Always"  # a sidecar: up before the gateway, down after it
    [container] = pod["containers"]
    base_url = {e["name"]: e["value"] for e in container["env"]}["CPMS_BASE_URL"]
    conf = sidecar_conf()
    assert base_url == f"http://{files.directive(conf, 'listen')}"
    mounted = {m["mountPath"]: m["name"] for m in sidecar["volumeMounts"]}
    config_volume = next(v for v in pod["volumes"] if v.get("configMap", {}).get("name") == "cpms-gateway-edge")
    assert sidecar["command"][sidecar["command"].index("-c") + 1] == f"{next(p for p, n in mounted.items() if n == config_volume['name'])}/nginx.conf"
    # each upstream is a Service on its port, and each call goes where the compose edge sends it
    upstreams = dict(re.findall(r"upstream\s+(\w+)\s*\{\s*server\s+([\w.-]+:\d+)", conf))
    services = of_kind("Service")
    for name, address in upstreams.items():
        host, port = address.split(":")
        assert services[host]["spec"]["ports"][0]["port"] == int(port) and host == f"cpms-{name}"
    locations = files.locations(files.server(conf, int(base_url.rsplit(":", 1)[1])))
    for path, owner in files.GATEWAY_CALLS.items():
        location = files.pick_location(locations, path)
        assert location is not None and re.search(rf"proxy_pass\s+http://{owner};", location.body), path


def test_chargers_reach_the_gateway_through_an_ingress_with_websocket_timeouts():
    ingress = of_kind("Ingress")["cpms-ocpp"]
    annotations = ingress["metadata"]["annotations"]
    for timeout in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(annotations[f"nginx.ingress.kubernetes.io/{timeout}"]) >= 10 * files.GATEWAY_HEARTBEAT_SECONDS
    [rule] = ingress["spec"]["rules"]
    assert [tls["hosts"] for tls in ingress["spec"]["tls"]] == [[rule["host"]]]  # wss://: TLS ends at the ingress
    paths = {p["path"]: p for p in rule["http"]["paths"]}
    assert set(paths) == {"/ocpp16", "/ocpp"}
    for path in paths.values():
        assert path["pathType"] == "Prefix"
        assert path["backend"]["service"] == {"name": "cpms-gateway", "port": {"name": "http"}}


# --- alert rules ---------------------------------------------------------------------------------

def alert_rules() -> list[dict]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def test_the_alerts_an_operator_needs_are_there():
    exprs = {rule["alert"]: rule["expr"] for rule in alert_rules()}
    needs = {
        "readiness down": "cpms_dependency_up", "a dead letter": 'queue=~".*\\\\.dlq"',
        "slow broker confirms": "cpms_broker_confirm_duration_seconds_bucket", "consumer lag": "cpms_queue_messages_ready",
        "spool depth": "cpms_ingest_spool_events", "Pending settlements older than a day": 'cpms_billing_oldest_settlement_age_seconds{status="Pending"}',
        "end-to-end lag": "cpms_sessions_event_lag_seconds_bucket",
        "chargers disconnecting en masse": "cpms_gateway_connected_chargers",
        "calls failing with InternalError": 'cpms_gateway_calls_total{outcome="InternalError"}',
        "ingest slow to answer the gateway": "cpms_gateway_ingest_seconds_bucket",
    }
    for need, fragment in needs.items():
        assert any(fragment in expr for expr in exprs.values()), need
    for rule in alert_rules():
        assert rule["labels"]["severity"] in ("critical", "warning") and rule["annotations"]["summary"], rule["alert"]


def test_prometheus_loads_the_alert_rules_compose_mounts(services=None):
    config = yaml.safe_load(files.PROMETHEUS_CONF.read_text())
    mounts = dict(v.split(":")[:2] for v in files.compose()["services"]["prometheus"]["volumes"] if v.startswith("./"))
    assert mounts["./deploy/prometheus/alerts.yml"] in config["rule_files"]
    assert any(t == "rabbitmq:15692" for job in config["scrape_configs"] for s in job.get("static_configs", []) for t in s["targets"])


async def test_every_metric_an_alert_reads_is_exported(api):
    status, exposition = await api.anonymous("GET", "/metrics")
    assert status == 200
    families = files.readable_families(exposition)
    for rule in alert_rules():
        names = files.metric_names(rule["expr"]) - {"up"}
        missing = {name for name in names if not files.is_exported(name, families)}
        assert not missing, f"alert {rule['alert']} reads {missing}, which the CPMS does not export"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_alert_rules():
    result = subprocess.run(["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_target_down_alert_covers_every_cpms_job():
    jobs = {job["job_name"] for job in yaml.safe_load(files.PROMETHEUS_CONF.read_text())["scrape_configs"]}
    cpms_jobs = jobs - {"rabbitmq", "prometheus"}
    assert cpms_jobs == {*files.API_SERVICES, files.GATEWAY}
    [expr] = [rule["expr"] for rule in alert_rules() if rule["alert"] == "CpmsTargetDown"]
    pattern = re.search(r'up\{job=~"([^"]+)"\}', expr).group(1)
    assert {job for job in jobs if re.fullmatch(pattern, job)} == cpms_jobs
