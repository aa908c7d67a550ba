"""The Kubernetes manifests (deploy/kubernetes, kustomize) and the alert rules: every resource
the kustomization lists is valid for Kubernetes, each service runs as it does in compose (its
command, its port, probes on /livez and /readyz, resources, a disruption budget and an
autoscaler), and every alert reads metrics the CPMS exports."""
from __future__ import annotations

import shutil
import subprocess

import kubernetes_validate
import pytest
import yaml

from services.catalogue import SERVICES
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


@pytest.mark.parametrize("service", list(SERVICES))
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
    aliases = {field.alias for field in Settings.model_fields.values() if field.alias}
    for kind in ("ConfigMap", "Secret"):
        for resource in of_kind(kind).values():
            keys = set(resource.get("data", {})) | set(resource.get("stringData", {}))
            assert keys <= aliases, f"{kind} sets what the CPMS does not read: {keys - aliases}"
    assert {"CPMS_DATABASE_URL", "CPMS_AMQP_URL", "CPMS_API_KEY", "CPMS_ADMIN_TOKEN"} <= set(of_kind("Secret")["cpms-secrets"]["stringData"])


def test_the_service_monitor_scrapes_every_service():
    monitor = of_kind("ServiceMonitor")["cpms"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    for service in of_kind("Service").values():
        assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == "http"


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
    families = files.exposition_families(exposition)
    for rule in alert_rules():
        names = files.metric_names(rule["expr"]) - {"up"}
        missing = {name for name in names if not files.is_exported(name, families)}
        assert not missing, f"alert {rule['alert']} reads {missing}, which the CPMS does not export"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_alert_rules():
    result = subprocess.run(["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
