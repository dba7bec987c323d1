"""The value a classifier returns for one event: a smart code, a calibrated confidence, and why
(``explanation``, see ``explain.py``).

``confidence`` is a calibrated probability that ``smart_code`` is right (measured on merchants
the model never saw, see ``scripts/train_classifier.py``), not a raw model score.
"""

from __future__ import annotations

from dataclasses import dataclass

METHODS = ("rule", "model", "memory", "org_rule", "external", "producer")


@dataclass(frozen=True, slots=True)
class Classification:
    smart_code: str
    confidence: float
    alternatives: tuple[tuple[str, float], ...]
    method: str  # one of METHODS
    line_codes: dict[int, str] | None = None
    reason: str | None = None
    # Why, as plain JSON-ready data: the evidence that decided (top model features, keyword and
    # MCC categories, the memory key that fired) and what capped the confidence ("capped_by").
    explanation: dict | None = None
