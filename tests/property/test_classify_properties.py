"""Properties of feed-line classification over arbitrary descriptors (hypothesis)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipeline.classify import Classifier, OrgMemory, decide
from pipeline.classify.codes import CREDIT_CODES, DEBIT_CODES, SHORT_CODES, SUSPENSE
from pipeline.classify.evaluate import DictEvent
from pipeline.classify.normalize import normalize

CLASSIFIER = Classifier.load()

texts = st.one_of(st.none(), st.text(max_size=120), st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 *#/.-", max_size=60))
events = st.builds(
    lambda d, cp, mcc, direction, source, amount: DictEvent({
        "description": d, "counterparty": cp, "mcc": mcc, "direction": direction, "source": source,
        "amount": str(amount), "currency": "EUR", "organization_id": "org-p"}),
    texts, st.one_of(st.none(), st.text(max_size=40)), st.one_of(st.none(), st.from_regex(r"\A[0-9]{4}\Z")),
    st.sampled_from(["debit", "credit"]), st.sampled_from(["bank_feed", "card_feed", "pos", "api"]),
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999"), places=2))

relaxed = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@relaxed
@given(st.lists(events, min_size=1, max_size=8))
def test_every_line_gets_one_allowed_code_and_a_probability(batch: list[DictEvent]) -> None:
    for event, c in zip(batch, CLASSIFIER.classify_batch(batch), strict=True):
        allowed = DEBIT_CODES if event.direction == "debit" else CREDIT_CODES
        assert c.smart_code in allowed
        assert 0.0 <= c.confidence <= 1.0
        action, reason = decide(c, event.amount, threshold=CLASSIFIER.threshold(c.smart_code), amount_cap=None)
        if c.smart_code == SUSPENSE:
            assert (action, reason) == ("review", "SUSPENSE")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events, min_size=2, max_size=6))
def test_batching_does_not_change_answers(batch: list[DictEvent]) -> None:
    assert CLASSIFIER.classify_batch(batch) == [CLASSIFIER.classify(e) for e in batch]


@relaxed
@given(texts)
@example("0&AAA")  # digits dropped from "0&aaa" once left "&aaa", which normalises to "aaa"
def test_normalisation_is_stable(text: str | None) -> None:
    once = normalize(text)
    assert all(t and not t.isdigit() for t in once.tokens[1:])    # a leading number is a name ("7-ELEVEN")
    assert normalize(" ".join(once.tokens)).tokens == once.tokens or once.prefix is not None


@relaxed
@given(st.lists(st.tuples(st.sampled_from(["ACME 1", "ACME 2", "BETA SHOP", "GAMMA"]),
                          st.sampled_from([SHORT_CODES["MEALS"], SHORT_CODES["FUEL"]])), max_size=12))
def test_memory_confidence_is_a_probability_and_state_round_trips(decisions: list[tuple[str, str]]) -> None:
    memory = OrgMemory()
    for description, code in decisions:
        memory.learn("org-p", DictEvent({"description": description, "direction": "debit"}), code, corrected=True)
    for description, _ in decisions:
        c = memory.lookup("org-p", DictEvent({"description": description, "direction": "debit"}))
        assert c is not None and 0.0 < c.confidence < 1.0
    assert OrgMemory.from_dict(json.loads(json.dumps(memory.to_dict()))).to_dict() == memory.to_dict()


@pytest.mark.parametrize("direction", ["debit", "credit"])
def test_direction_enum_objects_are_accepted(direction: str) -> None:
    class Direction:
        value = direction

    event = DictEvent({"description": "SHELL OIL 123", "amount": "10", "currency": "USD"})
    event.direction = Direction()
    assert CLASSIFIER.classify(event).smart_code in (DEBIT_CODES if direction == "debit" else CREDIT_CODES)
