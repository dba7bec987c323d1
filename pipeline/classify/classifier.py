"""The classifier: rules for structured events, memory and model for free-text feed lines.

Order of evidence for one event:

1. ``kind`` present → docs/catalog.md rule (``rules.py``); bill lines without a category are
   classified by the text model and their confidence caps the bill's.
2. A producer's ``smart_code`` is only a hint: the classification below must agree with it, or
   the event goes to review (``SMART_CODE_HINT_DISAGREES``); it never sets the confidence.
3. The organisation's memory (``memory.OrgMemory``): exact counterparty / merchant key, or a
   promoted org rule → ``memory`` / ``org_rule`` with its own honest confidence. A key with a
   single decision is only a *hint*: the model is asked too; if it agrees, its answer stands
   (and may post); if not, the hint stands, capped below every threshold, and goes to review.
4. The text model (``model.LinearModel``) → calibrated ``model`` classification, capped when the
   line is unfamiliar (``familiarity.py``).

Every result carries ``explanation`` (``explain.py``); a caller that needs only some model answers explained
says which (``classify_batch(explain=...)``: the worker explains only what goes to review).

``classify_batch`` featurises all model-bound lines at once: the model is a sparse matrix
product, so throughput is set by feature extraction (token-level caching makes repeats cheap).
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import cast

import numpy as np

from pipeline.classify import features
from pipeline.classify.codes import SUSPENSE, enum_value
from pipeline.classify.explain import model_explanations
from pipeline.classify.model import MODEL_DIR, LinearModel, Prediction
from pipeline.classify.rules import classify_structured, line_has_expense_code
from pipeline.classify.types import Classification

ALTERNATIVES_MAX = 3
SMART_CODE_HINT_DISAGREES = "SMART_CODE_HINT_DISAGREES"


class _LineEvent:
    """A bill line seen as a money-out feed line, for the text model."""

    __slots__ = ("amount", "counterparty", "currency", "description", "direction", "mcc", "source")

    def __init__(self, event: object, line: object | None) -> None:
        self.description = getattr(line, "description", None) if line is not None else getattr(event, "description", None)
        self.counterparty = getattr(event, "counterparty", None)
        self.amount = getattr(line, "amount", None) if line is not None else getattr(event, "amount", None)
        self.currency = getattr(event, "currency", None)
        self.mcc = getattr(event, "mcc", None)
        self.source = enum_value(getattr(event, "source", None))
        self.direction = "debit"


class Classifier:
    """Load once, classify many batches. Holds no per-organisation state (that is OrgMemory)."""

    def __init__(self, model: LinearModel, thresholds: dict[str, float] | None = None, *, warm: bool = True) -> None:
        self.model = model
        self.thresholds = dict(thresholds or {})
        if warm:
            features.warm(model.warm_tokens)

    @classmethod
    def load(cls, path: str | Path | None = None, *, warm: bool = True) -> Classifier:
        directory = Path(path) if path else MODEL_DIR
        model = LinearModel.load(directory)
        thresholds_file = directory / "thresholds.json"
        thresholds = json.loads(thresholds_file.read_text()) if thresholds_file.exists() else {}
        return cls(model, thresholds, warm=warm)

    def classify_batch(self, events: Sequence[object], *, org_memory=None,
                       explain: Callable[[int, Classification], bool] | None = None) -> list[Classification]:
        """One classification per event. ``explain(i, classification)``: whether the model's classification
        of event ``i`` needs its explanation (the others carry None); without it, every one has it."""
        with gc_paused():
            return self._classify_batch(events, org_memory, explain)

    def _classify_batch(self, events: Sequence[object], org_memory,
                        explain: Callable[[int, Classification], bool] | None) -> list[Classification]:
        results: list[Classification | None] = [None] * len(events)
        model_rows: list[tuple[int, int | None, object]] = []   # (event index, bill line index, model input)
        structured: dict[int, tuple] = {}
        hints: dict[int, Classification] = {}
        for i, event in enumerate(events):
            if getattr(event, "kind", None):
                rule = classify_structured(event)
                structured[i] = (rule, {})
                lines = getattr(event, "lines", None) or []
                for j in rule.lines_to_classify:
                    model_rows.append((i, j, _LineEvent(event, lines[j] if lines else None)))
                for j, line in enumerate(lines):
                    if line_has_expense_code(line):
                        structured[i][1][j] = (line.category, 1.0)
                continue
            found = self._remember(event, org_memory)
            if found is not None and (found.explanation or {}).get("capped_by"):
                hints[i], found = found, None          # a one-decision hint: ask the model too
            results[i] = found
            if found is None:
                model_rows.append((i, None, event))
        unexplained: dict[int, tuple[int, dict]] = {}
        prediction = self._apply_model(model_rows, results, structured, hints, unexplained) if model_rows else None
        for i, (rule, line_codes) in structured.items():
            results[i] = self._structured_result(events[i], rule, line_codes)
        out = [hint_checked(event, cls) for event, cls in zip(events, cast("list[Classification]", results),
                                                               strict=True)]
        if unexplained:
            wanted = [i for i in unexplained if explain is None or explain(i, out[i])]
            explanations = model_explanations(prediction, self.model.weights, self.model.vocabulary,
                                              [unexplained[i][0] for i in wanted])
            for i, explanation in zip(wanted, explanations, strict=True):
                out[i] = replace(out[i], explanation={**explanation, **unexplained[i][1]})
        return out

    def classify(self, event: object, *, org_memory=None) -> Classification:
        return self.classify_batch([event], org_memory=org_memory)[0]

    def threshold(self, smart_code: str, default: float = 0.85) -> float:
        return self.thresholds.get(smart_code, default)

    # -- evidence sources -------------------------------------------------------------------

    @staticmethod
    def _remember(event: object, org_memory) -> Classification | None:
        if org_memory is None:
            return None
        return org_memory.lookup(enum_value(getattr(event, "organization_id", None)) or "", event)

    def _apply_model(self, rows: list[tuple[int, int | None, object]], results: list, structured: dict,
                     hints: dict[int, Classification], unexplained: dict[int, tuple[int, dict]]) -> Prediction:
        """The model's answers for ``rows``: feed lines into ``results`` (their explanations still to build:
        ``unexplained`` maps the event to its prediction row and what a memory hint adds), bill lines into
        ``structured``."""
        prediction = self.model.predict([row[2] for row in rows])
        alts = _batch_alternatives(prediction, self.model.classes)
        classes = self.model.classes
        best = prediction.best.tolist()
        confidences = np.round(prediction.confidence, 4).tolist()
        for k, (i, line, _) in enumerate(rows):
            code = classes[best[k]]
            confidence = confidences[k]
            if line is None:
                results[i], extra = _with_hint(Classification(code, confidence, alts[k], "model"), hints.get(i))
                if extra is not None:
                    unexplained[i] = (k, extra)
            else:
                structured[i][1][line] = (code, confidence)
        return prediction

    @staticmethod
    def _structured_result(event: object, rule, line_codes: dict[int, tuple[str, float]]) -> Classification:
        confidence = min([rule.confidence, *(conf for _, conf in line_codes.values())])
        codes = {j: code for j, (code, _) in sorted(line_codes.items())} or None
        reason = rule.reason
        if codes and SUSPENSE in codes.values():   # a line would land in suspense: never auto-post
            confidence = 0.0
            reason = reason or "LINE_UNCLASSIFIED"
        return Classification(rule.smart_code, round(confidence, 4), ((rule.smart_code, round(confidence, 4)),),
                              "rule", line_codes=codes, reason=reason,
                              explanation={"method": "rule", "kind": enum_value(getattr(event, "kind", None)),
                                           "reason": reason, "capped_by": None})


def _with_hint(model: Classification, hint: Classification | None) -> tuple[Classification, dict | None]:
    """Merge a one-decision memory hint with the model's answer (see the module docstring); and, when
    the answer is the model's, what the hint adds to the model's explanation (None: the hint's stands)."""
    if hint is None:
        return model, {}
    memory_key = (hint.explanation or {}).get("memory_key")
    if hint.smart_code == model.smart_code:
        return model, {"memory_hint": memory_key, "hint_agrees": True}
    explanation = {**(hint.explanation or {}), "model_code": model.smart_code, "model_confidence": model.confidence}
    return replace(hint, explanation=explanation), None


def hint_checked(event: object, cls: Classification) -> Classification:
    """``cls``, sent to review when the producer's ``smart_code`` hint names another code."""
    hint = getattr(event, "smart_code", None)
    if not hint or hint == cls.smart_code or cls.reason:
        return cls
    return replace(cls, reason=SMART_CODE_HINT_DISAGREES)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector during a batch.

    A batch allocates many short-lived, acyclic objects; the collector would otherwise rescan the
    whole heap (model, caches) several times per batch, costing ~20 % of throughput. Reference
    counting still frees everything; cycles, if any, are collected after the batch.
    """
    enabled = gc.isenabled()
    if enabled:
        gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _batch_alternatives(prediction: Prediction, classes: list[str]) -> list[tuple[tuple[str, float], ...]]:
    """Top codes per row; the best carries the calibrated confidence, the rest share the remainder."""
    probs = prediction.probabilities
    rows = np.arange(len(probs))[:, None]
    top = np.argsort(-probs, axis=1)[:, :ALTERNATIVES_MAX]
    conf = prediction.confidence
    raw = prediction.raw_confidence
    scale = np.where(raw < 1.0, (1.0 - conf) / np.maximum(1.0 - raw, 1e-12), 0.0)
    values = np.round(probs[rows, top] * scale[:, None], 4)
    values[:, 0] = np.round(conf, 4)
    out = []
    for codes, vals in zip(top.tolist(), values.tolist(), strict=True):
        alternatives = [(classes[codes[0]], vals[0])]          # the best, then the others with a share
        alternatives += [(classes[c], v) for c, v in zip(codes[1:], vals[1:], strict=True) if v > 0]
        out.append(tuple(alternatives))
    return out
