"""A hostile decision message (deeply nested, huge, not JSON) is refused with a reason code, so the
decisions agent dead-letters it instead of crashing on it; only a signed decision parses."""

from __future__ import annotations

import json

import pytest

from pipeline.domain.catalog import load_catalog
from pipeline.domain.outcomes import Reason, Rejected
from pipeline.review import DECISION_BYTES_MAX, organization_of, parse_decision
from pipeline.signing import sign

CATALOG = load_catalog()
KEY = b"k" * 32
ORG = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"


@pytest.mark.parametrize(("raw", "reason"), [
    (b"[" * 100_000 + b"]" * 100_000, Reason.ENCODING_INVALID),  # too large (and too deep) to parse
    (b'{"a": ' * 12 + b"1" + b"}" * 12, Reason.JSON_TOO_DEEP),
    (b'{"organization_id": "' + b"x" * DECISION_BYTES_MAX + b'"}', Reason.ENCODING_INVALID),
    (b"\xff\xfe not json", Reason.ENCODING_INVALID),
    (b'{"decision": "approve", "decision": "correct"}', Reason.JSON_DUPLICATE_KEY),
])
def test_hostile_decisions_are_rejected_not_raised(raw: bytes, reason: Reason) -> None:
    result = parse_decision(raw, CATALOG, KEY)
    assert isinstance(result, Rejected) and result.reason is reason
    assert organization_of(raw) is None


def test_a_signed_decision_parses_and_an_unsigned_one_is_refused() -> None:
    decision = {"organization_id": ORG, "event_id": "e", "decision": "approve"}
    parsed = parse_decision(json.dumps(sign(decision, KEY)).encode(), CATALOG, KEY)
    assert isinstance(parsed, dict) and parsed["decision"] == "approve" and parsed["event_id"] == "e"
    unsigned = parse_decision(json.dumps(decision).encode(), CATALOG, KEY)
    assert isinstance(unsigned, Rejected) and unsigned.reason is Reason.DECISION_UNSIGNED
    assert organization_of(json.dumps(decision).encode()) == ORG
