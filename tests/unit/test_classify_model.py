"""The shipped text model: known descriptors, unseen merchants, calibration, suspense, speed limits."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from pipeline.classify import Classifier, decide
from pipeline.classify.codes import CREDIT_CODES, DEBIT_CODES, SHORT_CODES, SUSPENSE
from pipeline.classify.evaluate import DictEvent, coverage_curve, evaluate
from pipeline.classify.model import MODEL_DIR
from pipeline.classify.training import load_corpus

HELDOUT = Path(__file__).resolve().parents[2] / "data" / "classifier" / "corpus_heldout.jsonl.gz"


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier.load()


@pytest.fixture(scope="module")
def heldout() -> list[dict]:
    return load_corpus(HELDOUT)


@pytest.fixture(scope="module")
def heldout_results(classifier: Classifier, heldout: list[dict]):
    return classifier.classify_batch([DictEvent(r) for r in heldout])


def line(description: str, *, mcc: str | None = None, direction: str = "debit", source: str = "card_feed",
         counterparty: str | None = None, amount: str = "25.00", currency: str = "USD") -> DictEvent:
    return DictEvent({"description": description, "mcc": mcc, "direction": direction, "source": source,
                      "counterparty": counterparty, "amount": amount, "currency": currency,
                      "organization_id": "org-1"})


KNOWN = [
    ("SQ *BLUE BOTTLE COFFEE OAKLAND CA", None, "MEALS"),
    ("TST* SHAKE SHACK 1234 NEW YORK NY", None, "MEALS"),
    ("UBER *TRIP HELP.UBER.COM", None, "GROUND"),
    ("UBER *EATS PENDING", None, "MEALS"),
    ("LYFT   *RIDE SAT 2PM", None, "GROUND"),
    ("AMZN Mktp US*2K4L19QW2", None, "SUPPLIES"),
    ("DELTA AIR 0062345678901", "3058", "AIR"),
    ("MARRIOTT BOSTON COPLEY", "3509", "LODGING"),
    ("BKG*BOOKING.COM HOTEL", None, "LODGING"),
    ("SHELL OIL 57444 HOUSTON TX", None, "FUEL"),
    ("ARAL STATION 1234 BERLIN", None, "FUEL"),
    ("NETFLIX.COM 866-579-7172 CA", None, "SOFTWARE"),
    ("GOOGLE *GSUITE_EXAMPLE.COM", None, "SOFTWARE"),
    ("VERIZON WRLS P2222-01", None, "TELECOM"),
    ("WHOLEFDS MKT 10234", None, "WELFARE"),
    ("TESCO STORES 3012 LONDON", None, "WELFARE"),
    ("CVS/PHARMACY #01234", None, "HEALTH"),
    ("THE HOME DEPOT #0567", None, "REPAIRS"),
    ("FEDEX 78123456", None, "SHIPPING"),
    ("FACEBK *ADS 8JH2K", None, "MARKETING"),
    ("UDEMY ONLINE COURSES", None, "TRAINING"),
    ("GEICO *AUTO", None, "INSURANCE"),
    ("WEWORK 123 MAIN ST", None, "RENT"),
    ("BEST BUY 00012345", None, "IT"),
    ("ZARA.COM", None, "MISC"),
    ("MONTHLY SERVICE FEE", None, "BANKFEES"),
    ("VNPAY*NHA HANG PHO 24 HA NOI", None, "MEALS"),
    ("KARTENZAHLUNG REWE MARKT 12.03", None, "WELFARE"),
]


@pytest.mark.parametrize(("description", "mcc", "short"), KNOWN)
def test_known_descriptors(classifier: Classifier, description: str, mcc: str | None, short: str) -> None:
    assert classifier.classify(line(description, mcc=mcc)).smart_code == SHORT_CODES[short]


UNSEEN = [  # made-up small merchants, in many languages; none is in the corpus
    ("TRATTORIA DA PEPPINELLO NAPOLI", "MEALS"),
    ("SUMUP *BAECKEREI HOLZAPFEL", "MEALS"),
    ("ZAHNARZTPRAXIS DR KLEINHANS", "HEALTH"),
    ("NHA THUOC MINH CHAU Q3", "HEALTH"),
    ("FARMACIA SAN JORGITO", "HEALTH"),
    ("HOTEL PENSION ALPENBLICKHOF", "LODGING"),
    ("TAXI ZENTRALE OBERWIESEN", "GROUND"),
    ("AUTOFFICINA FRATELLI BRUNETTI", "REPAIRS"),
    ("KANCELARIA ADWOKACKA ZIELONKA", "PROF"),
    ("PAPELERIA LOS ALAMOS", "SUPPLIES"),
    ("TANKSTELLE HINTERMOOS", "FUEL"),
    ("LIBRAIRIE DU VIEUX PORT", "TRAINING"),
    ("SUPERMERCADO LA ESPERANZITA", "WELFARE"),
    ("KURIERDIENST BLITZPAKET", "SHIPPING"),
    ("RESTAURANTE O CANTINHO DO ZE", "MEALS"),
    ("SALON DE COIFFURE BELLEVILLE", "MISC"),
    ("STADTWERKE KLEINHEUBACH", "UTIL"),
    ("VERSICHERUNGSBUERO OBERMAIER", "INSURANCE"),
    ("DRUKARNIA POLIGRAF-MAX", "MARKETING"),
    ("COMPUTER STORE TECHNOVA", "IT"),
]


def test_unseen_merchants_generalise(classifier: Classifier) -> None:
    results = classifier.classify_batch([line(d) for d, _ in UNSEEN])
    right = sum(c.smart_code == SHORT_CODES[s] for c, (_, s) in zip(results, UNSEEN, strict=True))
    assert right >= 0.8 * len(UNSEEN), [(d, c.smart_code) for c, (d, _) in zip(results, UNSEEN, strict=True)]


def test_mcc_alone_decides_an_opaque_name(classifier: Classifier) -> None:
    assert classifier.classify(line("QZR HOLDINGS LLC", mcc="5541")).smart_code == SHORT_CODES["FUEL"]
    assert classifier.classify(line("QZR HOLDINGS LLC", mcc="7011")).smart_code == SHORT_CODES["LODGING"]


def test_money_in_only_gets_money_in_codes(classifier: Classifier) -> None:
    cases = [("INTEREST PAYMENT", "INTEREST"), ("ZINSGUTSCHRIFT", "INTEREST"),
             ("ACH CREDIT ACME CORP INV 10023", "PAYIN"), ("STRIPE PAYOUT", "PAYIN"),
             ("AMAZON.COM REFUND", "REFUND"), ("SHELL OIL 1234 RETURN", "REFUND")]
    for description, short in cases:
        c = classifier.classify(line(description, direction="credit", source="bank_feed"))
        assert c.smart_code == SHORT_CODES[short], description
        assert {code for code, _ in c.alternatives} <= CREDIT_CODES


def test_money_out_never_gets_a_money_in_code(classifier: Classifier) -> None:
    c = classifier.classify(line("INTEREST PAYMENT"))
    assert c.smart_code in DEBIT_CODES


def test_confidence_and_alternatives_are_probabilities(classifier: Classifier, heldout_results) -> None:
    for c in heldout_results[:2000]:
        assert 0.0 <= c.confidence <= 1.0
        assert c.alternatives[0] == (c.smart_code, c.confidence)
        assert sum(p for _, p in c.alternatives) <= 1.0001


def test_suspense_never_posts(classifier: Classifier) -> None:
    for description in ("ATM WITHDRAWAL 1234 MAIN ST", "TRANSFER TO JOHN SMITH", "CHECK 1043"):
        c = classifier.classify(line(description, source="bank_feed"))
        assert c.smart_code == SUSPENSE, description
        assert decide(c, Decimal("1"), threshold=0.0, amount_cap=None) == ("review", "SUSPENSE")
    assert classifier.thresholds[SUSPENSE] > 1.0


def test_heldout_targets(classifier: Classifier, heldout: list[dict]) -> None:
    """Merchants never trained on: auto-posted ≥ 98 % right, and most lines auto-post.

    The auto-post rate was ≥ 0.78 before lines without an agreeing MCC had to reach the threshold
    measured on real names (``familiarity.py``): generated bank-feed lines now post less, and
    more precisely (see BENCHMARKS.md, "Classification (issue 13)")."""
    report = evaluate([(DictEvent(r), r["expected_smart_code"]) for r in heldout], classifier, classifier.thresholds)
    assert report["auto_post_precision"] >= 0.98
    assert report["auto_post_rate"] >= 0.6
    assert report["per_code"][SUSPENSE]["auto_posted"] == 0


def test_calibration_on_heldout(heldout: list[dict], heldout_results) -> None:
    """Among lines auto-posted at confidence ≥ t, at least a share t is right (t = 0.5 … 0.99)."""
    for point in coverage_curve(heldout_results, [r["expected_smart_code"] for r in heldout]):
        assert point["calibrated"] is not False, point


def test_shipped_thresholds_respect_the_floor(classifier: Classifier) -> None:
    assert set(classifier.thresholds) == set(SHORT_CODES.values())
    assert all(t >= 0.85 for t in classifier.thresholds.values())


def test_artifact_is_small_and_loads() -> None:
    """Small enough to clone quickly; its load time is a benchmark (benchmarks/classify_bench.py),
    never a wall-clock assert (it failed on a loaded machine)."""
    size = sum(p.stat().st_size for p in MODEL_DIR.iterdir())
    assert size < 20 * 2**20
    assert Classifier.load(warm=False).thresholds


def test_classification_is_deterministic(classifier: Classifier) -> None:
    events = [line(d) for d, _, _ in KNOWN]
    assert classifier.classify_batch(events) == classifier.classify_batch(events)


def test_empty_and_garbage_input_do_not_crash(classifier: Classifier) -> None:
    for description in ("", None, "#### 0000 ////", "🙂🙂🙂", "x" * 500):
        c = classifier.classify(line(description))
        assert c.smart_code in DEBIT_CODES


def test_a_producer_code_is_only_a_hint(classifier: Classifier) -> None:
    e = line("ZZZ 123")
    e.smart_code = SHORT_CODES["RENT"]
    c = classifier.classify(e)
    assert c.method == "model" and c.confidence < 1.0
    assert (c.reason == "SMART_CODE_HINT_DISAGREES") == (c.smart_code != SHORT_CODES["RENT"])
    e.smart_code = None
    agreed = classifier.classify(e)
    e.smart_code = agreed.smart_code                  # a hint that agrees changes nothing, not even confidence
    assert classifier.classify(e) == agreed
