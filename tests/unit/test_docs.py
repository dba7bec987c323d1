"""docs/ is the project's reference: its worked examples post as written, every reason code is
documented, and nothing cites a document outside the repository."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from pipeline.domain.catalog import load_catalog
from pipeline.domain.entries import JournalEntry, is_balanced
from pipeline.domain.outcomes import Outcome, Reason
from pipeline.domain.posting import build_entry
from pipeline.domain.validate import Validated, validate_raw

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
EXAMPLE_RE = re.compile(r"```json\n(.*?)\n```\s*```entry\n(.*?)\n```", re.S)
COMMON = {"schema_version": 1, "event_id": "doc-example", "organization_id": "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
          "occurred_at": "2024-05-01T10:00:00Z"}
EXAMPLES = EXAMPLE_RE.findall((DOCS / "posting-rules.md").read_text("utf-8"))


def test_there_are_worked_examples() -> None:
    assert len(EXAMPLES) >= 8


@pytest.mark.parametrize(("event_json", "expected"), EXAMPLES)
def test_worked_example_posts_as_documented(event_json: str, expected: str) -> None:
    code, *lines = expected.strip().splitlines()
    checked = validate_raw(json.dumps({**COMMON, **json.loads(event_json)}).encode())
    assert isinstance(checked, Validated), checked
    entry = build_entry(checked.event, code, load_catalog())
    assert isinstance(entry, JournalEntry), entry
    assert is_balanced(entry)
    assert [f"{ln.side} {ln.account} {ln.amount}" for ln in entry.lines] == lines


def test_every_reason_and_outcome_is_documented() -> None:
    text = (DOCS / "reason-codes.md").read_text("utf-8")
    missing = [r.value for r in Reason if f"| `{r.value}` |" not in text]
    missing += [o.value for o in Outcome if f"| `{o.value}` |" not in text]
    assert not missing


def test_nothing_cites_a_document_outside_the_repository() -> None:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True,
                           timeout=30).stdout.split()
    # migrations are checksummed once applied and never edited: 0001 keeps its old comment
    skip = {"schemas/migrations/0001_universal_schema.sql", "tests/unit/test_docs.py"}
    pattern = re.compile(r"SPEC §|NOTES\.md|shared/SPEC")
    hits = [f for f in files if f not in skip and (ROOT / f).is_file() and not f.endswith((".gz", ".npz"))
            and pattern.search((ROOT / f).read_text("utf-8", errors="replace"))]
    assert not hits


def test_docs_links_resolve() -> None:
    broken = []
    for doc in [*DOCS.glob("*.md"), ROOT / "README.md", ROOT / "CHANGELOG.md"]:
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", doc.read_text("utf-8")):
            if "://" not in target and not (doc.parent / target).exists():
                broken.append(f"{doc.name} -> {target}")
    assert not broken
