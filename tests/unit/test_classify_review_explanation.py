"""A line the worker sends to review carries why (issue 13 item 5): the review item's classification
holds the explanation, in the message and in the review workspace's view of it."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from pipeline.classify import Classifier
from pipeline.domain.catalog import load_catalog
from pipeline.domain.validate import PAYLOAD_BYTES_MAX
from pipeline.envelopes import Record
from pipeline.flow import ClassifyContext, classify_batch, validate_batch
from pipeline.web.queue import CAP_WORDS, item_view, why_summary


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier.load()


def _record(description: str, offset: int) -> Record:
    event = {"schema_version": 1, "event_id": f"e-{offset}", "organization_id": str(uuid.UUID(int=7)),
             "source": "card_feed", "occurred_at": "2026-11-02T09:00:00Z", "amount": "42.00", "currency": "USD",
             "direction": "debit", "description": description}
    return Record("hera.transactions.raw", 0, offset, None, json.dumps(event).encode())


def test_review_items_carry_the_explanation(classifier: Classifier) -> None:
    records = [_record("ZZQUUX PARTNERS 0042", 0), _record("BANGKOK FUEL SHACK BURGERS", 1)]
    _, inline_work, _ = validate_batch(records, known_orgs=None, payload_bytes_max=PAYLOAD_BYTES_MAX,
                                       inline=lambda rec, org: True)
    _, work = classify_batch([env for env, _, _ in inline_work.inline], ClassifyContext(classifier, load_catalog()),
                             events=[event for _, _, event in inline_work.inline])
    assert len(work.reviews) == 2                      # unknown name; keywords of two categories
    for item in work.reviews:
        why = item.classification["explanation"]
        assert why["method"] == "model" and why["capped_by"] in ("nothing_known", "unknown_words",
                                                                  "lexicon_disagrees", "below_real_threshold")
        assert "top_features" in why and "unknown_tokens" in why
        message = json.loads(json.dumps(item.to_json()))          # what the review topic and queue store
        row = {"event": json.dumps(message["event"]), "classification": json.dumps(message["classification"]),
               "entry": json.dumps(message["entry"]), "org": "o", "org_name": "O", "event_id": message["event"]["event_id"],
               "suggested_smart_code": item.classification["smart_code"], "confidence": 0.5, "reason": "LOW_CONFIDENCE",
               "created_at": datetime(2026, 12, 3), "state": None, "decided_by_name": None,
               "refusal": None}
        view = item_view(row)
        assert view["explanation"] == why and CAP_WORDS[why["capped_by"]] in view["why"]


def test_every_cap_has_words_for_the_reviewer() -> None:
    from pipeline.classify import familiarity, memory

    caps = {familiarity.BELOW_REAL_THRESHOLD, "nothing_known", "unknown_words", "lexicon_disagrees", "one_decision"}
    assert caps <= set(CAP_WORDS)
    source = (Path(familiarity.__file__).read_text() + Path(memory.__file__).read_text())
    assert all(f'"{cap}"' in source for cap in caps)         # the names still exist where the caps are set


def test_the_summary_names_the_memory_key_and_the_cap() -> None:
    why = why_summary({"method": "memory", "memory_key": "d:kopi kenangan", "decisions": 1.0, "agreeing": 1.0,
                       "capped_by": "one_decision", "model_code": "HERA.X", "model_confidence": 0.4})
    assert "memory d:kopi kenangan" in why and "only one reviewer decision" in why and "HERA.X" in why
    assert why_summary(None) == ""
