"""decide(): one reason by precedence. evaluate(): docs/cli.md shape and arithmetic."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from pipeline.classify import Classification, decide
from pipeline.classify.codes import SHORT_CODES, SUSPENSE
from pipeline.classify.evaluate import DictEvent, coverage_curve, evaluate

MEALS, FUEL = SHORT_CODES["MEALS"], SHORT_CODES["FUEL"]


def c(code: str = MEALS, confidence: float = 0.95, reason: str | None = None) -> Classification:
    return Classification(code, confidence, ((code, confidence),), "model", reason=reason)


@pytest.mark.parametrize(("cls", "amount", "threshold", "cap", "expected"), [
    (c(), "10", 0.9, None, ("post", None)),
    (c(confidence=0.9), "10", 0.9, None, ("post", None)),                 # at the threshold posts
    (c(confidence=0.89), "10", 0.9, None, ("review", "LOW_CONFIDENCE")),
    (c(), "500.01", 0.9, Decimal("500"), ("review", "AMOUNT_OVER_CAP")),
    (c(), "500", 0.9, Decimal("500"), ("review", "AMOUNT_OVER_CAP")),        # at the cap: reviewed (docs/decisions.md)
    (c(), "499.99", 0.9, Decimal("500"), ("post", None)),
    (c(SUSPENSE, 1.0), "1", 0.0, None, ("review", "SUSPENSE")),
    (c(reason="INCOMPLETE_EVENT", confidence=1.0), "1", 0.5, None, ("review", "INCOMPLETE_EVENT")),
    (c(SUSPENSE, 0.1, "INCOMPLETE_EVENT"), "9999", 0.9, Decimal("1"), ("review", "SUSPENSE")),   # precedence
    (c(confidence=0.1), "9999", 0.9, Decimal("1"), ("review", "LOW_CONFIDENCE")),
])
def test_decide(cls: Classification, amount: str, threshold: float, cap: Decimal | None, expected: tuple) -> None:
    assert decide(cls, Decimal(amount), threshold=threshold, amount_cap=cap) == expected


class Scripted:
    """A classifier that returns prepared answers, to check evaluate()'s arithmetic."""

    def __init__(self, answers: list[Classification]) -> None:
        self.answers = answers

    def classify_batch(self, events, *, org_memory=None):
        return self.answers[: len(events)]


def test_evaluate_shape_and_arithmetic() -> None:
    events = [DictEvent({"amount": "10", "description": str(i)}) for i in range(5)]
    expected = [MEALS, MEALS, FUEL, FUEL, SUSPENSE]
    answers = [c(MEALS, 0.99), c(MEALS, 0.5), c(MEALS, 0.99), c(FUEL, 0.97), c(SUSPENSE, 0.99)]
    report = evaluate(list(zip(events, expected, strict=True)), Scripted(answers), {MEALS: 0.9, FUEL: 0.95})
    assert set(report) >= {"n", "accuracy", "auto_post_rate", "auto_post_precision", "review_rate", "per_code"}
    assert report["n"] == 5
    assert report["accuracy"] == 0.8                     # 4 of 5 right
    assert report["auto_post_rate"] == 0.6               # MEALS .99, MEALS .99 (wrong), FUEL .97
    assert report["auto_post_precision"] == round(2 / 3, 4)
    assert report["review_rate"] == 0.4
    assert report["per_code"][MEALS] == {"n": 2, "predicted": 3, "correct": 2, "recall": 1.0,
                                         "precision": round(2 / 3, 4), "auto_posted": 2,
                                         "auto_post_precision": 0.5, "threshold": 0.9}
    assert report["per_code"][SUSPENSE]["auto_posted"] == 0


def test_threshold_override_applies_to_every_code() -> None:
    events = [DictEvent({"amount": "1"}) for _ in range(2)]
    report = evaluate([(events[0], MEALS), (events[1], FUEL)], Scripted([c(MEALS, 0.8), c(FUEL, 0.8)]),
                      {MEALS: 0.99, FUEL: 0.99}, threshold_override=0.7)
    assert report["auto_post_rate"] == 1.0


def test_evaluate_empty_input() -> None:
    report = evaluate([], Scripted([]), {})
    assert report["n"] == 0 and report["accuracy"] is None and report["per_code"] == {}


def test_coverage_curve_counts_and_flags_calibration() -> None:
    results = [c(MEALS, 0.95), c(MEALS, 0.95), c(MEALS, 0.6), c(SUSPENSE, 0.99)]
    curve = {p["threshold"]: p for p in coverage_curve(results, [MEALS, FUEL, MEALS, SUSPENSE], grid=(0.5, 0.9))}
    assert curve[0.5]["auto_post_rate"] == 0.75 and curve[0.5]["auto_post_precision"] == round(2 / 3, 4)
    assert curve[0.9]["auto_post_precision"] == 0.5 and curve[0.9]["calibrated"] is False


def test_dict_event_gives_attribute_access() -> None:
    e = DictEvent({"amount": "12.50", "mcc": "5812", "lines": [{"description": "x", "amount": "1", "category": "service"}]})
    assert e.amount == Decimal("12.50") and e.mcc == "5812"
    assert e.lines[0].category == "service"
    assert e.kind is None and e.anything_else is None


def test_eval_file_reads_jsonl_with_expected_codes(tmp_path) -> None:
    from pipeline.classify.evaluate import eval_file

    path = tmp_path / "eval.jsonl"
    rows = [{"description": "SHELL OIL 123 HOUSTON", "direction": "debit", "source": "card_feed", "amount": "40",
             "currency": "USD", "mcc": "5541", "expected_smart_code": FUEL},
            {"description": "ATM WITHDRAWAL MAIN ST", "direction": "debit", "source": "bank_feed", "amount": "40",
             "currency": "USD", "expected_smart_code": SUSPENSE}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    report = eval_file(path)
    assert report["n"] == 2 and report["accuracy"] == 1.0
    assert report["auto_post_rate"] == 0.5 and report["auto_post_precision"] == 1.0
    path.write_text(json.dumps({"description": "x"}) + "\n")
    with pytest.raises(ValueError, match="expected_smart_code"):
        eval_file(path)
