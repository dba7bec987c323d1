"""Unfamiliarity caps, explanations, digit names, risk-controlled thresholds and the learning replay."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.classify import Classifier
from pipeline.classify.codes import SHORT_CODES
from pipeline.classify.evaluate import DictEvent
from pipeline.classify.familiarity import CAP_NOTHING_KNOWN, CAP_UNCORROBORATED
from pipeline.classify.normalize import normalize
from pipeline.classify.report import curve, replay
from pipeline.classify.training import clopper_pearson_upper, risk_controlled_threshold


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier.load()


def line(description: str, mcc: str | None = None, direction: str = "debit") -> DictEvent:
    return DictEvent({"description": description, "direction": direction, "source": "card_feed", "mcc": mcc,
                      "amount": "12.00", "currency": "USD"})


def test_a_line_of_unknown_words_without_keyword_or_mcc_is_capped(classifier: Classifier) -> None:
    c = classifier.classify(line("ZQXWV PLORKTAB"))
    assert c.confidence <= CAP_NOTHING_KNOWN
    assert c.explanation["capped_by"] == "nothing_known"
    assert c.explanation["unknown_tokens"] == ["zqxwv", "plorktab"]


def test_an_mcc_lifts_the_cap(classifier: Classifier) -> None:
    c = classifier.classify(line("ZQXWV PLORKTAB", mcc="5812"))
    assert c.smart_code == SHORT_CODES["MEALS"]
    assert c.explanation["capped_by"] is None and c.explanation["mcc_category"] == "MEALS"


def test_a_keyword_of_another_category_caps_the_model(classifier: Classifier) -> None:
    c = classifier.classify(line("ZQXWV FUEL SHACK BURGERS"))
    if c.smart_code != SHORT_CODES["MEALS"]:          # whatever the model says, it may not post unopposed
        assert c.confidence <= CAP_UNCORROBORATED
    assert set(c.explanation["lexicon"]) >= {"MEALS"}


def test_money_in_is_not_capped_for_a_new_customer(classifier: Classifier) -> None:
    c = classifier.classify(line("PAYMENT FROM ZQXWV PLORKTAB", direction="credit"))
    assert c.explanation["capped_by"] is None


def test_every_model_classification_explains_itself(classifier: Classifier) -> None:
    c = classifier.classify(line("STARBUCKS COFFEE 1234 SEATTLE"))
    e = c.explanation
    assert e["method"] == "model" and e["top_features"]
    assert all(":" in f for f in e["top_features"])
    assert "MEALS" in e["lexicon"]


def test_digit_names_are_kept_and_dates_are_not() -> None:
    assert normalize("7-ELEVEN PRETORIA").tokens[:2] == ("7", "eleven")
    assert normalize("99 SPEED MART PENANG").tokens[0] == "99"
    assert "12" not in normalize("12/03 STARBUCKS").tokens
    assert "0042" not in normalize("STARBUCKS 0042").tokens


def test_clopper_pearson_bound() -> None:
    assert clopper_pearson_upper(0, 149) == pytest.approx(0.0199, abs=1e-3)   # the rule of three, one-sided 95 %
    assert clopper_pearson_upper(0, 0) == 1.0


def test_risk_controlled_threshold_is_the_lowest_whose_posted_set_keeps_the_bound() -> None:
    conf = np.linspace(0.999, 0.85, 1000)
    correct = np.ones(1000, dtype=bool)
    correct[500::5] = False                        # below ~0.92 one line in five is wrong
    t, trace = risk_controlled_threshold(conf, correct, np.ones(1000, dtype=bool))
    chosen = conf >= t
    assert 0.9 < t < 0.95
    assert (~correct[chosen]).sum() / chosen.sum() <= 0.02
    assert trace and all("clopper_pearson_95" in row for row in trace)


def test_curve_reports_coverage_and_precision() -> None:
    points = {p["threshold"]: p for p in curve([(True, True, 0.99), (True, False, 0.9), (False, True, 0.5)])}
    assert points[0.95] == {"threshold": 0.95, "coverage": 0.3333, "precision": 1.0}
    assert points[0.85]["precision"] == 0.5


def test_learning_replay_reports_quarters_and_learns_from_reviews(classifier: Classifier) -> None:
    code = SHORT_CODES["REPAIRS"]
    rows = [{"description": f"ZZQUUX PARTNERS {i:04d}", "direction": "debit", "source": "bank_feed",
             "expected_smart_code": code} for i in range(12)]
    out = replay(classifier, rows)
    quarters = out["quarters"]
    assert [q["n"] for q in quarters] == [3, 3, 3, 3]
    assert quarters[0]["auto_post_rate"] < quarters[3]["auto_post_rate"] == 1.0
    assert quarters[3]["auto_post_precision"] == 1.0


def test_sealed_external_split_keeps_the_precision_promise(classifier: Classifier) -> None:
    """Real names written outside the project, never trained or calibrated on (data/classifier/external)."""
    from pathlib import Path

    from pipeline.classify.report import load_rows, report

    path = Path(__file__).resolve().parents[2] / "data" / "classifier" / "external" / "nsi_names.jsonl.gz"
    rows = load_rows(path)                                   # the sealed "test" split
    assert len(rows) > 5000 and {r["split"] for r in rows} == {"test"}
    headline = report(classifier, rows)["without_mcc"]["all"]
    assert headline["auto_post_precision"] >= 0.98
    assert headline["auto_post_rate"] >= 0.04


def test_training_refuses_the_sealed_split() -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    import train_classifier

    with pytest.raises(ValueError, match="sealed"):
        train_classifier.external_rows("test")


def test_explanations_quote_the_iso_description_of_the_mcc(classifier: Classifier) -> None:
    from pipeline.classify.lexicon import mcc_description

    assert mcc_description("5812") == "Eating places and restaurants"
    assert mcc_description("0000") is None and mcc_description(None) is None
    assert classifier.classify(line("ZQXWV PLORKTAB", mcc="5812")).explanation["mcc_description"] == (
        "Eating places and restaurants")
