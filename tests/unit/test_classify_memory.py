"""Per-organisation learning: corrections teach at once, consistency promotes, contradiction demotes."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from pipeline.classify import Classifier, MemoryError_, OrgMemory, decide
from pipeline.classify.codes import SHORT_CODES
from pipeline.classify.evaluate import DictEvent, learning_curve
from pipeline.classify.memory import PROMOTE_AFTER, memory_keys

REPAIRS = SHORT_CODES["REPAIRS"]
MARKETING = SHORT_CODES["MARKETING"]


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier.load()


def line(description: str, org: str = "org-a", counterparty: str | None = None, source: str = "card_feed") -> DictEvent:
    return DictEvent({"description": description, "counterparty": counterparty, "direction": "debit",
                      "source": source, "amount": "120.00", "currency": "USD", "organization_id": org})


def test_keys_ignore_store_numbers_processors_and_channel_text() -> None:
    a = memory_keys(line("SQ *ACME WIDGETS #0042 SPRINGFIELD"))
    b = memory_keys(line("POS PURCHASE ACME WIDGETS 0077 SHELBYVILLE", source="bank_feed"))
    assert "d:acme widgets" in a and "d:acme widgets" in b


def test_one_correction_suggests_and_two_consistent_corrections_post(classifier: Classifier) -> None:
    memory = OrgMemory()
    first = line("ACME WIDGETS 0042 SPRINGFIELD")
    assert classifier.classify(first, org_memory=memory).smart_code != REPAIRS
    memory.learn("org-a", first, REPAIRS, corrected=True)
    hint = classifier.classify(line("ACME WIDGETS 0077 SHELBYVILLE"), org_memory=memory)
    assert (hint.smart_code, hint.method) == (REPAIRS, "memory")
    assert hint.explanation["capped_by"] == "one_decision" and hint.explanation["memory_key"] == "d:acme widgets"
    assert decide(hint, Decimal("120"), threshold=classifier.threshold(REPAIRS), amount_cap=None)[0] == "review"
    memory.learn("org-a", line("ACME WIDGETS 0077 SHELBYVILLE"), REPAIRS, corrected=True)
    nxt = classifier.classify(line("ACME WIDGETS 0101 OGDENVILLE"), org_memory=memory)
    assert nxt.smart_code == REPAIRS and nxt.method == "memory"
    assert 0.9 < nxt.confidence < 1.0                      # posterior, not a constant 1.0
    assert decide(nxt, Decimal("120"), threshold=classifier.threshold(REPAIRS), amount_cap=None)[0] == "post"


def test_counterparty_key_matches_different_descriptors(classifier: Classifier) -> None:
    memory = OrgMemory()
    memory.learn("org-a", line("DD 88812 REF", counterparty="Blue Fox Studio Ltd"), MARKETING, corrected=True)
    c = classifier.classify(line("ONLINE PAYMENT 1234", counterparty="BLUE FOX STUDIO LTD"), org_memory=memory)
    assert c.smart_code == MARKETING


def test_memory_is_per_organisation(classifier: Classifier) -> None:
    memory = OrgMemory()
    memory.learn("org-a", line("ACME WIDGETS 1"), REPAIRS, corrected=True)
    assert memory.lookup("org-b", line("ACME WIDGETS 2", org="org-b")) is None
    assert classifier.classify(line("ACME WIDGETS 2", org="org-b"), org_memory=memory).method == "model"


def test_consistent_decisions_promote_an_org_rule_that_covers_other_locations() -> None:
    memory = OrgMemory()
    for i in range(PROMOTE_AFTER):
        memory.learn("org-a", line(f"GLORBINGTON SEATTLE {i}"), REPAIRS, corrected=i == 0)
    c = memory.lookup("org-a", line("GLORBINGTON PORTLAND"))      # place words are not part of the key
    assert (c.smart_code, c.method) == (REPAIRS, "org_rule")
    assert memory.stats("org-a")["rules"] >= 1


def test_contradiction_demotes_the_rule_and_sends_the_next_line_to_review(classifier: Classifier) -> None:
    memory = OrgMemory()
    for i in range(PROMOTE_AFTER):
        memory.learn("org-a", line(f"GLORBINGTON {i}"), REPAIRS, corrected=False)
    before = memory.lookup("org-a", line("GLORBINGTON 9"))
    memory.learn("org-a", line("GLORBINGTON 10"), MARKETING, corrected=True)
    after = memory.lookup("org-a", line("GLORBINGTON 11"))
    assert before.method == "org_rule"
    assert after.method == "memory"
    assert after.confidence < before.confidence
    assert decide(after, Decimal("1"), threshold=classifier.threshold(after.smart_code), amount_cap=None) == (
        "review", "LOW_CONFIDENCE")


def test_state_round_trips_through_json() -> None:
    memory = OrgMemory()
    for i in range(4):
        memory.learn("org-a", line(f"GLORBINGTON {i}", counterparty="Glorbington Inc"), REPAIRS, corrected=True)
    restored = OrgMemory.from_dict(json.loads(json.dumps(memory.to_dict())))
    assert restored.to_dict() == memory.to_dict()
    assert restored.lookup("org-a", line("GLORBINGTON X")) == memory.lookup("org-a", line("GLORBINGTON X"))


@pytest.mark.parametrize("bad", [{}, {"version": 99, "orgs": {}}, {"version": 1, "orgs": {"o": {"entries": 3}}}])
def test_malformed_state_is_rejected(bad: dict) -> None:
    with pytest.raises(MemoryError_):
        OrgMemory.from_dict(bad)


def test_learn_rejects_a_non_smart_code() -> None:
    with pytest.raises(ValueError, match="smart code"):
        OrgMemory().learn("org-a", line("X"), "MEALS", corrected=True)


def test_learning_curve_improves_after_corrections(classifier: Classifier) -> None:
    events = [line(f"ACME WIDGETS {i:04d} SPRINGFIELD") for i in range(8)]
    points = {p["k"]: p for p in learning_curve(classifier, events, REPAIRS, classifier.thresholds, ks=(0, 1, 3))}
    assert points[0]["accuracy"] < 0.5
    assert points[1]["accuracy"] == 1.0 and points[1]["auto_post_rate"] == 0.0   # one decision: a hint
    assert points[3]["auto_post_rate"] == 1.0 and "org_rule" in points[3]["methods"]


def test_memory_respects_direction(classifier: Classifier) -> None:
    memory = OrgMemory()
    memory.learn("org-a", line("ACME WIDGETS 1"), REPAIRS, corrected=True)
    memory.learn("org-a", line("ACME WIDGETS 2"), REPAIRS, corrected=True)
    refund = DictEvent({"description": "ACME WIDGETS 1 REFUND", "direction": "credit", "source": "card_feed",
                        "amount": "20", "currency": "USD", "organization_id": "org-a"})
    c = classifier.classify(refund, org_memory=memory)
    assert c.method == "model" and c.smart_code == SHORT_CODES["REFUND"]


def test_one_organisations_slice_round_trips_between_workers() -> None:
    code = "HERA.FIN.EXP.PROFESSIONAL.FEES.v1"
    mine = OrgMemory()
    mine.learn("org-a", line("ZZQ PARTNERS 0042", "org-a"), code, corrected=True)
    mine.learn("org-b", line("ZZQ PARTNERS 0042", "org-b"), code, corrected=True)
    exported = mine.export_org("org-a")
    assert list(exported["orgs"]) == ["org-a"]
    json.dumps(exported)  # persisted as JSONB
    other = OrgMemory()  # another worker
    other.absorb(exported)
    hit = other.lookup("org-a", line("ZZQ PARTNERS 0042", "org-a"))
    assert hit is not None and hit.smart_code == code
    assert other.lookup("org-b", line("ZZQ PARTNERS 0042", "org-b")) is None


def test_no_key_is_made_of_the_first_token_alone() -> None:
    a = memory_keys(line("BANGKOK FUEL SHACK BURGERS"))
    b = memory_keys(line("BANGKOK BANK FEE"))
    assert not set(a) & set(b)
    assert a == ["d:fuel shack"] and b == ["d:bank"]          # "fee" is a channel word
    memory = OrgMemory()
    for i in range(PROMOTE_AFTER):
        memory.learn("org-a", line(f"ZZQUUX FUEL SHACK {i}"), SHORT_CODES["MEALS"], corrected=True)
    assert memory.lookup("org-a", line("ZZQUUX HOLDINGS PARTNERS")) is None


def test_one_letter_and_digit_tokens_keep_two_names_apart() -> None:
    # "BIG C" (groceries) and "BIG W" (department store) must not share "d:big", the first token alone
    assert memory_keys(line("BIG C")) == ["d:big c"] and memory_keys(line("BIG W #0042")) == ["d:big w"]
    assert memory_keys(line("7-ELEVEN 12345")) == ["d:7 eleven"]
    memory = OrgMemory()
    for i in range(PROMOTE_AFTER):
        memory.learn("org-a", line(f"BIG C {i}"), SHORT_CODES["WELFARE"], corrected=True)
    assert memory.lookup("org-a", line("BIG W")) is None


def test_place_words_are_not_merchant_keys() -> None:
    assert memory_keys(line("STARBUCKS BANGKOK")) == memory_keys(line("STARBUCKS HO CHI MINH"))
    assert memory_keys(line("BANGKOK")) == ["d:bangkok"]                    # only a place: kept, not dropped


@pytest.mark.parametrize("wrapped", ["SHOPEEPAY*KOPI KENANGAN 0042", "VNPAY*KOPI KENANGAN", "PAYPAL *KOPI KENANGAN",
                                     "GOPAY KOPI KENANGAN 12", "SQ *KOPI KENANGAN #12"])
def test_gateway_prefixes_are_stripped_before_keys(wrapped: str) -> None:
    assert memory_keys(line(wrapped)) == ["d:kopi kenangan"]


def test_one_decision_never_auto_posts_through_the_org_memory() -> None:
    memory = OrgMemory()
    memory.learn("org-a", line("ZZQUUX PARTNERS 1"), REPAIRS, corrected=True)
    c = memory.lookup("org-a", line("ZZQUUX PARTNERS 2"))
    assert c.confidence <= 0.8 and c.explanation["capped_by"] == "one_decision"


def test_a_contradiction_demotes_the_key_that_was_used_even_if_the_event_no_longer_makes_it() -> None:
    memory = OrgMemory()
    for i in range(PROMOTE_AFTER):
        memory.learn("org-a", line(f"ZZQUUX PARTNERS {i}"), REPAIRS, corrected=False)
    assert memory.lookup("org-a", line("ZZQUUX PARTNERS 9")).method == "org_rule"
    memory.learn("org-a", line("QQX OTHER NAME"), MARKETING, corrected=True, used_key="d:zzquux partners")
    after = memory.lookup("org-a", line("ZZQUUX PARTNERS 10"))
    assert after.method == "memory" and after.confidence < 0.85
