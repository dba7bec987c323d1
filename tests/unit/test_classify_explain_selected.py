"""``Classifier.classify_batch(explain=...)``: the explanations asked for are exactly those of a full
run, the others are left out, and nothing else about a classification changes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pipeline.classify import Classifier, OrgMemory
from pipeline.classify.codes import SHORT_CODES
from pipeline.classify.evaluate import DictEvent

ORG = "org-1"
LINES = ["SQ *BLUE BOTTLE COFFEE SF", "ZQXWV PLORKTAB", "SHELL OIL 57444 HOUSTON TX", "ACME WIDGETS 0042",
         "BANGKOK FUEL SHACK BURGERS", "DELTA AIR 0062345678901"]


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier.load()


def _events() -> list[DictEvent]:
    events = [DictEvent({"organization_id": ORG, "description": d, "amount": "12.50", "currency": "USD",
                         "direction": "debit", "source": "card_feed"}) for d in LINES]
    events.append(DictEvent({"organization_id": ORG, "kind": "invoice.issued", "amount": "100.00", "currency": "USD"}))
    return events


def _memory(classifier: Classifier) -> OrgMemory:
    """One decision on two lines: hints the model is asked about too, one agreeing, one not."""
    memory = OrgMemory()
    events = _events()
    memory.learn(ORG, events[3], classifier.classify(events[3]).smart_code, corrected=False)
    memory.learn(ORG, events[0], SHORT_CODES["FUEL"], corrected=True)
    return memory


@pytest.mark.parametrize("with_memory", [False, True])
def test_only_the_asked_explanations_are_built_and_they_match_a_full_run(classifier: Classifier,
                                                                         with_memory: bool) -> None:
    memory = _memory(classifier) if with_memory else None
    full = classifier.classify_batch(_events(), org_memory=memory)
    asked: list[int] = []

    def odd(i: int, cls: object) -> bool:
        asked.append(i)
        return i % 2 == 1

    some = classifier.classify_batch(_events(), org_memory=memory, explain=odd)
    if with_memory:     # the agreeing hint adds to the model's explanation; the other answer is the hint's
        assert full[3].explanation["hint_agrees"] is True and full[0].method == "memory"
    assert asked and set(asked) <= set(range(len(LINES)))          # model answers only, never the rule's
    for i, (a, b) in enumerate(zip(full, some, strict=True)):
        if i in asked and i % 2 == 0:
            assert b.explanation is None and a.explanation is not None
            assert replace(a, explanation=None) == b
        else:
            assert a == b
