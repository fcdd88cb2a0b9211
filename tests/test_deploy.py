"""Deployment files stay consistent with the code: valid YAML, real commands, real settings."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

from parlons.serve import SERVICES
from parlons.services.common.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def test_kubernetes_manifests_use_real_services_and_a_valid_config(tmp_path: Path) -> None:
    documents = list(yaml.safe_load_all((ROOT / "deploy" / "kubernetes" / "parlons.yaml").read_text()))
    config_map = next(d for d in documents if d["kind"] == "ConfigMap")
    config_file = tmp_path / "parlons.toml"
    config_file.write_text(config_map["data"]["parlons.toml"])
    tomllib.loads(config_file.read_text())
    load_config(config_file, environ={})  # unknown keys would raise
    for deployment in (d for d in documents if d["kind"] == "Deployment"):
        args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[0] == "serve" and args[1] in SERVICES


def test_dockerfile_installs_cpu_torch_first_and_models_from_the_catalog() -> None:
    from parlons.models.manager import ModelManager

    text = (ROOT / "deploy" / "Dockerfile").read_text()
    assert text.index('"torch==2.13.0"') < text.index("pip install .")
    line = next(l for l in text.splitlines() if l.startswith("ARG PARLONS_MODELS="))
    names = line.split("=", 1)[1].strip('"').split()
    known = {info.name for info in ModelManager().list()}
    assert set(names) <= known
