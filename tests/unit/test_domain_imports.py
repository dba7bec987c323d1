"""``pipeline.domain`` stays pure: it imports nothing that does I/O and never reads the clock.

Walks the source of every module with ``ast`` (no import side effects), like the import checks
asyncpg and TigerBeetle keep in their own suites.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "pipeline" / "domain"
FORBIDDEN_MODULES = {
    "asyncpg", "aiokafka", "faust", "kafka", "psycopg", "psycopg2", "socket", "ssl", "http", "urllib",
    "requests", "httpx", "aiohttp", "asyncio", "subprocess", "os", "shutil", "tempfile", "threading",
    "multiprocessing", "signal", "time", "random", "secrets", "sqlite3", "logging", "prometheus_client",
    "sklearn", "joblib", "pipeline.ledger", "pipeline.classify", "pipeline.devtools.services", "agents",
}
# Reading the catalog's package data once at start is the single sanctioned read.
ALLOWED_EXCEPTIONS = {"catalog.py": {"importlib.resources", "pathlib"}}
FORBIDDEN_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter", "urandom", "uuid1", "uuid4",
                   "system", "popen", "remove", "unlink", "rmtree", "mkdir"}
FORBIDDEN_NAMES = {"open", "print", "input", "exec", "eval", "breakpoint", "__import__"}


def _modules() -> list[Path]:
    files = sorted(DOMAIN.glob("*.py"))
    assert files, DOMAIN
    return files


def _imports(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _forbidden(name: str, allowed: set[str]) -> bool:
    if any(name == ok or name.startswith(ok + ".") for ok in allowed):
        return False
    return any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN_MODULES)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.name)
def test_no_io_imports(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    allowed = ALLOWED_EXCEPTIONS.get(path.name, set())
    bad = sorted(name for name in _imports(tree) if _forbidden(name, allowed))
    assert bad == [], f"{path.name} imports I/O modules: {bad}"
    if path.name not in ALLOWED_EXCEPTIONS:
        assert not {"importlib.resources", "pathlib"} & _imports(tree), f"{path.name} reads files"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.name)
def test_no_clock_randomness_or_builtin_io(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in FORBIDDEN_CALLS:
                problems.append(f"line {node.lineno}: .{func.attr}()")
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_NAMES:
                problems.append(f"line {node.lineno}: {func.id}()")
    assert problems == [], f"{path.name}: {problems}"


def test_the_walker_catches_offenders() -> None:
    tree = ast.parse("import os\nfrom asyncpg import connect\nfrom datetime import datetime\nx = datetime.now()\n")
    assert {"os", "asyncpg"} <= {n for n in _imports(tree) if _forbidden(n, set())}
    calls = [n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)]
    assert "now" in calls
