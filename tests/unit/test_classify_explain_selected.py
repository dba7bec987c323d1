"""``Classifier.classify_batch(explain=...)``: the explanations asked for are exactly those of a full
run, the others are left out, and nothing else about a classification changes; the worker's review
items (``flow.classify_batch`` asks only for theirs) carry exactly the full run's."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace

import pytest

from pipeline.classify import Classifier, OrgMemory
from pipeline.classify.codes import SHORT_CODES
from pipeline.classify.evaluate import DictEvent
from pipeline.domain.catalog import load_catalog
from pipeline.domain.validate import PAYLOAD_BYTES_MAX
from pipeline.envelopes import Record
from pipeline.flow import ClassifyContext, classify_batch, validate_batch

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


def test_review_items_carry_the_full_runs_explanations(classifier: Classifier) -> None:
    records = [Record("hera.transactions.raw", 0, i, None, json.dumps(
        {"schema_version": 1, "event_id": f"e-{i}", "organization_id": str(uuid.UUID(int=7)), "source": "card_feed",
         "occurred_at": "2026-11-02T09:00:00Z", "amount": "42.00", "currency": "USD", "direction": "debit",
         "description": d}).encode()) for i, d in enumerate(LINES)]
    _, inline, _ = validate_batch(records, known_orgs=None, payload_bytes_max=PAYLOAD_BYTES_MAX,
                                  inline=lambda rec, org: True)
    events = [event for _, _, event in inline.inline]
    _, work = classify_batch([env for env, _, _ in inline.inline], ClassifyContext(classifier, load_catalog()),
                             events=events)
    full = {event.event_id: cls for event, cls in zip(events, classifier.classify_batch(events), strict=True)}
    assert work.reviews and work.to_post                      # both kinds in the batch
    for item in work.reviews:
        assert item.classification["explanation"] == full[item.event_id].explanation
