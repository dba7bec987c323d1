"""Dependencies point inward: ``cli → agents → pipeline → schemas`` (the house map in the README).

Every module of every package is walked with ``ast`` (function-level imports included, no import side
effects) and held to its package's rule: what it must never import. ``pipeline/domain``'s stricter
purity (no I/O, no clock) is ``test_domain_imports``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# the composition root and the developer tooling may import the agents (they start workers)
COMPOSITION = ("pipeline/cli/", "pipeline/devtools/")  # the composition root (the CLI) and the developer tooling
RULES: list[tuple[str, tuple[str, ...]]] = [  # (package, forbidden imports), most specific first
    ("pipeline/domain", ("agents", "pipeline.devtools", "pipeline.ledger", "pipeline.classify", "pipeline.flow", "pipeline.web",
                         "pipeline.observability", "pipeline.resilience", "pipeline.config")),
    ("pipeline/classify", ("agents", "pipeline.devtools", "pipeline.ledger", "pipeline.web", "pipeline.flow")),
    ("pipeline/ledger", ("agents", "pipeline.devtools", "pipeline.classify", "pipeline.web", "pipeline.flow")),
    ("pipeline/resilience", ("agents", "pipeline.devtools", "pipeline.classify", "pipeline.web", "pipeline.flow")),
    ("pipeline/observability", ("agents", "pipeline.devtools", "pipeline.classify", "pipeline.ledger", "pipeline.web")),
    ("pipeline", ("agents", "pipeline.devtools")),  # developer tooling only from the composition root
    ("agents", ("pipeline.cli", "pipeline.web", "pipeline.devtools")),
    ("schemas", ("pipeline", "agents")),
]


def imports(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def rule_for(rel: str) -> tuple[str, ...]:
    if rel.startswith(COMPOSITION):
        return ()
    for package, forbidden in RULES:
        if rel == package or rel.startswith(package + "/"):
            return forbidden
    return ()


def violations(rel: str, source: str) -> list[str]:
    forbidden = rule_for(rel)
    return sorted(name for name in imports(ast.parse(source))
                  if any(name == bad or name.startswith(bad + ".") for bad in forbidden))


def modules() -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for top in ("pipeline", "agents", "schemas")
                  for p in (ROOT / top).rglob("*.py"))


@pytest.mark.parametrize("rel", modules())
def test_module_keeps_its_layer(rel: str) -> None:
    assert violations(rel, (ROOT / rel).read_text(encoding="utf-8")) == []


def test_the_rules_catch_offenders() -> None:
    assert violations("pipeline/flow.py", "def f():\n    from agents.app import create_app\n") == ["agents.app"]
    assert violations("schemas/events.py", "import pipeline.config\n") == ["pipeline.config"]
    assert violations("pipeline/classify/x.py", "from pipeline.ledger.store import LedgerStore\n")
    assert violations("pipeline/cli/pipeline_commands.py", "from agents.worker import run_worker\n") == []
    assert violations("pipeline/flow.py", "from pipeline.devtools import services\n") == ["pipeline.devtools"]
