"""Deployment files stay consistent with the code: valid YAML, real commands, real settings."""

from __future__ import annotations

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
