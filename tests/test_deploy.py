"""Deployment files stay consistent with the code: valid YAML, real commands, real settings."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from parlons.cli import build_parser
from parlons.serve import SERVICES
from parlons.services.common.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def test_kubernetes_manifests_use_real_services_and_a_valid_config(tmp_path: Path) -> None:
    documents = list(yaml.safe_load_all((ROOT / "deploy" / "kubernetes" / "parlons.yaml").read_text()))
    config_maps = [d for d in documents if d["kind"] == "ConfigMap"]
    assert {m["metadata"]["name"] for m in config_maps} == {"parlons-config", "parlons-gateway-config"}
    configs = {}
    for config_map in config_maps:
        config_file = tmp_path / f"{config_map['metadata']['name']}.toml"
        config_file.write_text(config_map["data"]["parlons.toml"])
        tomllib.loads(config_file.read_text())
        configs[config_map["metadata"]["name"]] = load_config(config_file, environ={})  # unknown keys would raise
    # Backends trust only the gateway (mTLS), which presents its client certificate.
    backends, gateway = configs["parlons-config"], configs["parlons-gateway-config"]
    assert backends.server.require_gateway and backends.server.tls_client_ca
    assert backends.server.trusted_gateway_identities == ["parlons-gateway"]
    assert gateway.gateway.backend_ca and gateway.gateway.backend_cert and gateway.gateway.backend_key
    policies = {d["metadata"]["name"]: d for d in documents if d["kind"] == "NetworkPolicy"}
    backend_policy = policies["parlons-backends"]["spec"]["ingress"]
    assert backend_policy[0]["from"] == [{"podSelector": {"matchLabels": {"app": "parlons-gateway"}}}]
    for deployment in (d for d in documents if d["kind"] == "Deployment"):
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        args = container["args"]
        assert args[0] == "serve" and args[1] in SERVICES
        probe = container["readinessProbe"]
        if "exec" in probe:  # a real command of the image
            command = probe["exec"]["command"]
            assert command[:2] == ["parlons", "health"]
            build_parser().parse_args(command[1:])
    # every backend service has its replicas, a route from the gateway and the policy
    deployed = {d["spec"]["template"]["spec"]["containers"][0]["args"][1]
                for d in documents if d["kind"] == "Deployment"}
    assert deployed == set(SERVICES)
    protected = backend_policy_selector(policies["parlons-backends"])
    for name in set(SERVICES) - {"gateway"}:
        assert getattr(gateway.gateway, name) == [f"dns:///parlons-{name}:50051"], name
        assert f"parlons-{name}" in protected, name


def test_every_pod_is_bounded_unprivileged_and_the_public_door_speaks_tls(tmp_path: Path) -> None:
    documents = list(yaml.safe_load_all((ROOT / "deploy" / "kubernetes" / "parlons.yaml").read_text()))
    for deployment in (d for d in documents if d["kind"] == "Deployment"):
        name = deployment["metadata"]["name"]
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0, name
        volumes = {v["name"]: v for v in pod["volumes"]}
        for container in pod["containers"]:
            assert container["resources"]["limits"]["memory"], name  # a runaway request cannot take the node
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False and security["readOnlyRootFilesystem"] is True, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], name  # the one writable place
    gateway_map = next(d for d in documents if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "parlons-gateway-config")
    config_file = tmp_path / "gateway.toml"
    config_file.write_text(gateway_map["data"]["parlons.toml"])
    gateway = load_config(config_file, environ={})
    assert gateway.server.tls_cert and gateway.server.tls_key  # gRPC and REST in TLS
    deployment = next(d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"] == "parlons-gateway")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    mounted = {m["mountPath"] for m in container["volumeMounts"]}
    assert any(gateway.server.tls_cert.startswith(path + "/") for path in mounted)
    probe = container["readinessProbe"]["exec"]["command"]
    assert "--ca" in probe or "--tls" in probe  # a TLS probe, not the plaintext gRPC one
    build_parser().parse_args(probe[1:])


def backend_policy_selector(policy: dict[str, Any]) -> set[str]:
    return {v for e in policy["spec"]["podSelector"]["matchExpressions"] for v in e["values"]}


def test_dockerfile_installs_cpu_torch_first_and_models_from_the_catalog() -> None:
    from parlons.models.manager import ModelManager

    text = (ROOT / "deploy" / "Dockerfile").read_text()
    assert text.index('"torch==2.13.0"') < text.index("pip install .")
    line = next(row for row in text.splitlines() if row.startswith("ARG PARLONS_MODELS="))
    names = line.split("=", 1)[1].strip('"').split()
    known = {info.name for info in ModelManager().list()}
    assert set(names) <= known


# --- Live capacity and autoscaling (issue 23): the HPA and the adapter rules read series
# the code exports, and the transcription Deployment fits streams held all day.

KUBERNETES = ROOT / "deploy" / "kubernetes"
# The series Prometheus scrapes for each kind of collector (family name + suffix).
SERIES_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
}


def exported_series() -> dict[str, tuple[str, ...]]:
    """Every series name the services export, with its collector's label names, read
    from the collectors registered in parlons.services.common.metrics."""
    from prometheus_client.metrics import MetricWrapperBase

    from parlons.services.common import metrics

    series: dict[str, tuple[str, ...]] = {}
    for collector in vars(metrics).values():
        if not isinstance(collector, MetricWrapperBase):
            continue
        for family in collector.describe():
            assert family.type in SERIES_SUFFIXES, f"{family.name}: {family.type} has no suffix table here"
            for suffix in SERIES_SUFFIXES[family.type]:
                series[family.name + suffix] = tuple(collector._labelnames)
    return series


def quantity(value: str | int | float) -> float:
    """A Kubernetes quantity as a number ("500m" = 0.5, "3" = 3)."""
    text = str(value)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def manifests(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((KUBERNETES / name).read_text()) if d]


def test_exported_series_are_read_from_the_code() -> None:
    series = exported_series()
    assert series["parlons_active_streams"] == ("service",)
    assert "parlons_live_streams_refused_total" in series and "parlons_live_batch_size_bucket" in series
    assert "parlons_live_backlog" not in series and "parlons_live_streams_refused" not in series


def test_transcription_hpa_scales_on_exported_live_capacity_metrics(tmp_path: Path) -> None:
    documents = manifests("parlons.yaml")
    deployments = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Deployment"}
    hpas = [d for d in documents if d["kind"] == "HorizontalPodAutoscaler"]
    assert hpas, "no HorizontalPodAutoscaler in parlons.yaml"
    hpa = next((h for h in hpas if h["spec"]["scaleTargetRef"]["name"] == "parlons-transcription"), None)
    assert hpa is not None, "no HorizontalPodAutoscaler targets parlons-transcription"
    assert hpa["apiVersion"] == "autoscaling/v2"
    spec = hpa["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "parlons-transcription"}
    target = deployments[spec["scaleTargetRef"]["name"]]
    assert target["spec"]["template"]["spec"]["containers"][0]["args"][:2] == ["serve", "transcription"]
    assert "replicas" not in target["spec"], "the HPA owns the count: a fixed one is reset at every apply"
    assert 2 <= spec["minReplicas"] < spec["maxReplicas"]

    series = exported_series()
    pods = {}
    for metric in spec["metrics"]:
        kind = metric["type"]
        if kind == "Resource":
            continue
        name = metric[kind[0].lower() + kind[1:]]["metric"]["name"]
        assert name in series, f"the HPA reads {name}, which services/common/metrics.py does not export"
        if kind == "Pods":
            pods[name] = metric["pods"]["target"]
    assert set(pods) == {"parlons_active_streams", "parlons_live_backlog_seconds"}
    assert {m["resource"]["name"] for m in spec["metrics"] if m["type"] == "Resource"} == {"cpu"}
    assert all(t["type"] == "AverageValue" for t in pods.values())
    # The streams target sits below what a replica admits, so a new one is up before refusals.
    config_file = tmp_path / "parlons.toml"
    config_file.write_text(next(d for d in documents if d["metadata"]["name"] == "parlons-config")["data"]["parlons.toml"])
    max_streams = load_config(config_file, environ={}).transcription.max_streams
    assert max_streams > 0, "the HPA's target needs a known per-replica capacity ([transcription] max_streams)"
    assert 0.5 * max_streams <= quantity(pods["parlons_active_streams"]["averageValue"]) < max_streams
    assert 0 < quantity(pods["parlons_live_backlog_seconds"]["averageValue"]) <= 2
    # Up fast, down slowly: desks hold their streams all day.
    behavior = spec["behavior"]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] <= 60
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 900

    # prometheus-adapter exposes exactly what the HPA reads, from exported series, per pod.
    (adapter,) = manifests("prometheus-adapter-rules.yaml")
    rules = yaml.safe_load(adapter["data"]["config.yaml"])["rules"]
    exposed = set()
    for rule in rules:
        source = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", rule["seriesQuery"])
        assert source is not None and source.group() in series, rule["seriesQuery"]
        assert "service" in series[source.group()] and 'service="transcription"' in rule["metricsQuery"]
        assert re.match(rule["name"]["matches"], source.group())
        exposed.add(rule["name"]["as"])
        assert rule["resources"]["overrides"] == {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
    assert exposed <= set(series)
    assert set(pods) <= exposed, "a Pods metric of the HPA that prometheus-adapter does not expose"


def test_transcription_pods_are_scraped_and_outlive_their_drain(tmp_path: Path) -> None:
    documents = manifests("parlons.yaml")
    config_file = tmp_path / "parlons.toml"
    config_file.write_text(next(d for d in documents if d["metadata"]["name"] == "parlons-config")["data"]["parlons.toml"])
    server = load_config(config_file, environ={}).server
    for deployment in (d for d in documents if d["kind"] == "Deployment"):
        pod = deployment["spec"]["template"]
        container = pod["spec"]["containers"][0]
        name = deployment["metadata"]["name"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        annotations = pod["metadata"].get("annotations", {})
        assert annotations.get("prometheus.io/scrape") == "true", name
        assert int(annotations["prometheus.io/port"]) == ports["metrics"] == server.metrics_port, name
        # SIGTERM: NOT_SERVING for shutdown_delay_s, then open calls get grace_s.
        grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
        assert grace > server.shutdown_delay_s + server.grace_s, name
        # An exec probe's own timeout (1 s unless set) outlasts `parlons health` itself.
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            probe = container.get(kind)
            if probe and "exec" in probe:
                health = build_parser().parse_args(probe["exec"]["command"][1:])
                assert probe.get("timeoutSeconds", 1) > health.timeout, f"{name} {kind}"
    (monitor,) = manifests("prometheus-podmonitor.yaml")
    assert monitor["kind"] == "PodMonitor"
    selected = {v for e in monitor["spec"]["selector"]["matchExpressions"] for v in e["values"]}
    assert "parlons-transcription" in selected
    assert [e["port"] for e in monitor["spec"]["podMetricsEndpoints"]] == ["metrics"]
