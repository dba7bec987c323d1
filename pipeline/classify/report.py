"""``hera classify --eval``: the precision/coverage curve, per-group tables and the learning replay.

An evaluation file is JSONL of raw events with ``expected_smart_code``. Optional columns are
used when present:

- ``split``: only the ``test`` rows are evaluated by default (the external file
  ``data/classifier/external/nsi_names.jsonl.gz`` carries its sealed split this way);
- ``country``, ``source``, ``nsi_tag``: the tables are broken down by them;
- ``mcc`` / ``mcc_derived``: the "with MCC" variant uses ``mcc`` if the row has one, else
  ``mcc_derived`` (an MCC inferred from the label's merchant type: optimistic, reported apart);
  the "without MCC" variant removes every MCC;
- ``doubt``: rows whose label is debatable are also reported without them.

``replay`` (``--learn``) feeds the rows in order as one organisation's stream: each line is
classified with the organisation's memory; a line that goes to review is answered with its
expected code (memory learns it); the auto-post rate and precision are printed per quarter.
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from pipeline.classify.codes import SUSPENSE
from pipeline.classify.decide import POST, decide
from pipeline.classify.evaluate import DEFAULT_THRESHOLD, DictEvent

CURVE_GRID = (0.5, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99)
GROUP_ROWS_MAX = 15
SEA_COUNTRIES = ("TH", "VN", "MY", "ID", "PH", "SG")


def load_rows(path: str | Path, split: str | None = "test") -> list[dict]:
    """Rows of a JSONL(.gz) file; with a ``split`` column, only rows of ``split`` (None = all)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        rows = [json.loads(text) for text in fh if text.strip()]
    for number, row in enumerate(rows, 1):
        if not isinstance(row.get("expected_smart_code"), str):
            raise ValueError(f"{path}:{number}: missing expected_smart_code")
    if split and any("split" in r for r in rows):
        rows = [r for r in rows if r.get("split") == split]
    return rows


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _outcomes(classifier, rows: Sequence[dict], mcc: str) -> list[tuple[bool, bool, float]]:
    """Per row: (auto-posted at the shipped thresholds, right, confidence)."""
    events = [DictEvent({**r, "mcc": _mcc(r, mcc)}) for r in rows]
    results = classifier.classify_batch(events)
    out = []
    for row, c in zip(rows, results, strict=True):
        threshold = classifier.thresholds.get(c.smart_code, DEFAULT_THRESHOLD)
        posted = decide(c, Decimal(0), threshold=threshold, amount_cap=None)[0] == POST
        out.append((posted, c.smart_code == row["expected_smart_code"],
                    c.confidence if c.smart_code != SUSPENSE else -1.0))
    return out


def _mcc(row: dict, variant: str) -> str | None:
    if variant == "without":
        return None
    return row.get("mcc") or row.get("mcc_derived")


def _summary(outcomes: Sequence[tuple[bool, bool, float]]) -> dict:
    n = len(outcomes)
    posted = [ok for p, ok, _ in outcomes if p]
    return {"n": n, "accuracy": _ratio(sum(ok for _, ok, _ in outcomes), n),
            "auto_post_rate": _ratio(len(posted), n), "auto_post_precision": _ratio(sum(posted), len(posted))}


def curve(outcomes: Sequence[tuple[bool, bool, float]], grid: Sequence[float] = CURVE_GRID) -> list[dict]:
    """Coverage and precision if one global threshold t replaced the shipped ones."""
    n = len(outcomes)
    rows = []
    for t in grid:
        chosen = [ok for _, ok, conf in outcomes if conf >= t]
        rows.append({"threshold": t, "coverage": _ratio(len(chosen), n), "precision": _ratio(sum(chosen), len(chosen))})
    return rows


def _by(rows: Sequence[dict], outcomes: list, key: str) -> dict[str, dict]:
    groups: dict[str, list] = defaultdict(list)
    for row, o in zip(rows, outcomes, strict=True):
        groups[str(row.get(key) or "-")].append(o)
    ranked = sorted(groups, key=lambda g: (-len(groups[g]), g))
    keep = ranked[:GROUP_ROWS_MAX] + [g for g in SEA_COUNTRIES if g in groups and g not in ranked[:GROUP_ROWS_MAX]]
    return {g: _summary(groups[g]) for g in keep}


def report(classifier, rows: Sequence[dict]) -> dict:
    """Headline, curve and per-group figures, without and with MCC."""
    out: dict = {"rows": len(rows)}
    has_mcc = any(r.get("mcc") or r.get("mcc_derived") for r in rows)
    for variant in ("without", "with") if has_mcc else ("without",):
        outcomes = _outcomes(classifier, rows, variant)
        sure = [o for r, o in zip(rows, outcomes, strict=True) if not r.get("doubt")]
        block = {"all": _summary(outcomes), "undoubted_labels": _summary(sure), "curve": curve(outcomes)}
        for key in ("source", "country", "nsi_tag"):
            if any(key in r for r in rows):
                block["by_" + key] = _by(rows, outcomes, key)
        out[f"{variant}_mcc" + ("_derived" if variant == "with" and not any(r.get("mcc") for r in rows) else "")] = block
    return out


def replay(classifier, rows: Sequence[dict], *, quarters: int = 4, org_id: str = "eval-org") -> dict:
    """One organisation's stream: reviews answered with the expected code; figures per quarter."""
    from pipeline.classify.memory import OrgMemory

    memory = OrgMemory()
    n = len(rows)
    stats = [{"n": 0, "posted": 0, "posted_right": 0, "by_memory": 0} for _ in range(quarters)]
    for i, row in enumerate(rows):
        event = DictEvent({**row, "organization_id": org_id})
        c = classifier.classify_batch([event], org_memory=memory)[0]
        threshold = classifier.thresholds.get(c.smart_code, DEFAULT_THRESHOLD)
        q = stats[min(quarters - 1, i * quarters // max(n, 1))]
        q["n"] += 1
        expected = row["expected_smart_code"]
        if decide(c, Decimal(0), threshold=threshold, amount_cap=None)[0] == POST:
            q["posted"] += 1
            q["posted_right"] += c.smart_code == expected
            q["by_memory"] += c.method in ("memory", "org_rule")
        else:
            memory.learn(org_id, event, expected, corrected=c.smart_code != expected,
                         used_key=(c.explanation or {}).get("memory_key"))
    return {"rows": n, "quarters": [
        {"quarter": k + 1, "n": q["n"], "auto_post_rate": _ratio(q["posted"], q["n"]),
         "auto_post_precision": _ratio(q["posted_right"], q["posted"]), "posted_by_memory": q["by_memory"]}
        for k, q in enumerate(stats)], "memory": memory.stats(org_id)}
