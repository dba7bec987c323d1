"""Measuring the classifier: ``hera classify --eval`` metrics, coverage curves, learning curves.

``evaluate`` classifies events whose right answer is known and reports docs/cli.md's object: ``n``,
``accuracy``, ``auto_post_rate`` (share of events that would post without review),
``auto_post_precision`` (share of those that are right), ``review_rate`` and a ``per_code`` table.
``coverage_curve`` traces auto-post rate and precision against one global threshold, to check the
calibration promise (posted at confidence ≥ t → at least a share t right).
``learning_curve`` shows how fast reviewer corrections for one counterparty turn into right,
auto-posted classifications.

``DictEvent`` gives attribute access to a plain JSON dict (docs/contracts.md field names), so JSONL files
can be evaluated without the wire model.
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pipeline.classify.codes import SUSPENSE
from pipeline.classify.decide import POST, decide
from pipeline.classify.types import Classification

DEFAULT_THRESHOLD = 0.85
_FIELDS = ("event_id", "organization_id", "source", "kind", "occurred_at", "currency", "direction",
           "description", "counterparty", "mcc", "tax", "tip", "payments", "fees", "payroll", "loan",
           "adjustment", "reference", "smart_code", "metadata")


class DictEvent:
    """Attribute view of a raw event dict; ``amount`` is a ``Decimal``, ``lines`` are DictEvents."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        for name in _FIELDS:
            setattr(self, name, data.get(name))
        try:
            self.amount = Decimal(str(data.get("amount"))) if data.get("amount") is not None else None
        except InvalidOperation:
            self.amount = None
        lines = data.get("lines")
        self.lines = [DictEvent(line) for line in lines] if isinstance(lines, list) else None
        if "category" in data:
            self.category = data.get("category")

    def __getattr__(self, name: str) -> None:  # unknown optional fields read as absent
        if name.startswith("__"):
            raise AttributeError(name)
        return None


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def evaluate(events_with_expected: Sequence[tuple[object, str]], classifier, thresholds: Mapping[str, float],
             *, threshold_override: float | None = None, org_memory=None) -> dict:
    """docs/cli.md metrics for events with known smart codes."""
    events = [e for e, _ in events_with_expected]
    results = classifier.classify_batch(events, org_memory=org_memory) if events else []
    table: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    posted = posted_right = right = 0
    for (event, expected), c in zip(events_with_expected, results, strict=True):
        t = threshold_override if threshold_override is not None else thresholds.get(c.smart_code, DEFAULT_THRESHOLD)
        amount = getattr(event, "amount", None) or Decimal(0)
        action, _ = decide(c, amount, threshold=t, amount_cap=None)
        ok = c.smart_code == expected
        right += ok
        table[expected]["n"] += 1
        table[expected]["correct"] += ok
        table[c.smart_code]["predicted"] += 1
        if action == POST:
            posted += 1
            posted_right += ok
            table[c.smart_code]["auto_posted"] += 1
            table[c.smart_code]["auto_posted_correct"] += ok
    n = len(events)
    per_code: dict[str, dict[str, Any]] = {}
    for code in sorted(table):
        row = table[code]
        per_code[code] = {
            "n": row["n"], "predicted": row["predicted"], "correct": row["correct"],
            "recall": _ratio(row["correct"], row["n"]),
            "precision": _ratio(row["correct"], row["predicted"]),
            "auto_posted": row["auto_posted"],
            "auto_post_precision": _ratio(row["auto_posted_correct"], row["auto_posted"]),
            "threshold": threshold_override if threshold_override is not None else thresholds.get(code, DEFAULT_THRESHOLD),
        }
    return {"n": n, "accuracy": _ratio(right, n), "auto_post_rate": _ratio(posted, n),
            "auto_post_precision": _ratio(posted_right, posted), "review_rate": _ratio(n - posted, n),
            "per_code": per_code}


def load_eval_file(path: str | Path) -> list[tuple[DictEvent, str]]:
    """JSONL raw events with ``expected_smart_code`` → (event, expected) pairs; blank lines skipped."""
    pairs = []
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for number, text in enumerate(fh, 1):
            if not text.strip():
                continue
            data = json.loads(text)
            expected = data.get("expected_smart_code")
            if not isinstance(expected, str):
                raise ValueError(f"{path}:{number}: missing expected_smart_code")
            pairs.append((DictEvent(data), expected))
    return pairs


def eval_file(path: str | Path, classifier=None, *, threshold_override: float | None = None) -> dict:
    """``hera classify --eval FILE``: docs/cli.md metrics for a JSONL file (shipped model by default)."""
    from pipeline.classify.classifier import Classifier

    classifier = classifier or Classifier.load()
    return evaluate(load_eval_file(path), classifier, classifier.thresholds, threshold_override=threshold_override)


def coverage_curve(results: Sequence[Classification], expected: Sequence[str],
                   grid: Iterable[float] = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99)) -> list[dict]:
    """For one global threshold t: share auto-posted (never suspense) and their precision."""
    n = len(results)
    out = []
    for t in grid:
        chosen = [c.smart_code == e for c, e in zip(results, expected, strict=True)
                  if c.smart_code != SUSPENSE and c.confidence >= t]
        out.append({"threshold": t, "auto_post_rate": _ratio(len(chosen), n),
                    "auto_post_precision": _ratio(sum(chosen), len(chosen)),
                    "calibrated": (sum(chosen) / len(chosen) >= t) if chosen else None})
    return out


def learning_curve(classifier, events: Sequence[object], smart_code: str, thresholds: Mapping[str, float],
                   *, ks: Sequence[int] = (0, 1, 2, 3, 5), org_id: str = "learning-curve") -> list[dict]:
    """After k reviewer corrections to ``smart_code``, how the counterparty's next events fare."""
    from pipeline.classify.memory import OrgMemory

    out = []
    for k in ks:
        memory = OrgMemory()
        for event in events[:k]:
            memory.learn(org_id, event, smart_code, corrected=True)
        rest = [_with_org(e, org_id) for e in events[k:]]
        if not rest:
            break
        results = classifier.classify_batch(rest, org_memory=memory)
        posted = [c for c in results
                  if decide(c, Decimal(0), threshold=thresholds.get(c.smart_code, DEFAULT_THRESHOLD), amount_cap=None)[0] == POST]
        out.append({"k": k, "next": len(rest),
                    "accuracy": _ratio(sum(c.smart_code == smart_code for c in results), len(results)),
                    "auto_post_rate": _ratio(len(posted), len(results)),
                    "auto_post_precision": _ratio(sum(c.smart_code == smart_code for c in posted), len(posted)),
                    "methods": sorted({c.method for c in results})})
    return out


class _OrgView:
    """An event seen as belonging to another organisation (for learning-curve experiments)."""

    def __init__(self, event: object, org_id: str) -> None:
        self._event = event
        self.organization_id = org_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self._event, name)


def _with_org(event: object, org_id: str) -> object:
    return event if getattr(event, "organization_id", None) == org_id else _OrgView(event, org_id)
