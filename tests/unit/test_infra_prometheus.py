"""The alert rules are valid, tested, complete and name only metrics the worker exports.

``promtool`` comes from Debian's ``prometheus`` package, installed by ``make setup``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

import pipeline.observability.metrics as metrics

INFRA = Path(__file__).resolve().parents[2] / "infra" / "prometheus"
PROMQL_METRIC = re.compile(r"\bhera_[a-z0-9_]+")
# Prometheus's own series, not the worker's
PROMETHEUS_SERIES = {"up"}


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: `make setup` installs Debian's prometheus package"
    return found


def rules() -> list[dict]:
    return [r for g in yaml.safe_load((INFRA / "rules.yaml").read_text())["groups"] for r in g["rules"]]


def test_promtool_checks_the_rules() -> None:
    out = subprocess.run([promtool(), "check", "rules", "rules.yaml"], cwd=INFRA, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(rules())} rules found" in out.stdout


def test_each_alert_fires_on_its_fault_and_stays_quiet_when_healthy() -> None:
    out = subprocess.run([promtool(), "test", "rules", "rules_test.yaml"], cwd=INFRA, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    tests = yaml.safe_load((INFRA / "rules_test.yaml").read_text())["tests"]
    fires = {t["alert_rule_test"][0]["alertname"] for t in tests if t["alert_rule_test"][0]["exp_alerts"]}
    quiet = {t["alert_rule_test"][0]["alertname"] for t in tests if not t["alert_rule_test"][0]["exp_alerts"]}
    names = {r["alert"] for r in rules()}
    assert fires == names, f"alerts never shown firing: {names - fires}"
    assert quiet == names, f"alerts never shown quiet on a healthy series: {names - quiet}"


def test_every_alert_has_for_severity_and_a_runbook_section() -> None:
    runbook = (INFRA / "RUNBOOK.md").read_text()
    anchors = {line[3:].strip().lower() for line in runbook.splitlines() if line.startswith("## ")}
    for rule in rules():
        assert rule.get("for"), rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        url = rule["annotations"]["runbook_url"]
        assert url.startswith("infra/prometheus/RUNBOOK.md#"), url
        assert url.split("#", 1)[1] in anchors, f"{rule['alert']}: no section {url} in RUNBOOK.md"


def test_rules_name_only_exported_metrics() -> None:
    exported = metrics.exported_names()
    for rule in rules():
        named = set(PROMQL_METRIC.findall(rule["expr"]))
        assert named or PROMETHEUS_SERIES & set(re.findall(r"\b[a-z_]+\b", rule["expr"])), rule["alert"]
        assert named <= exported, f"{rule['alert']} names metrics nobody exports: {named - exported}"
