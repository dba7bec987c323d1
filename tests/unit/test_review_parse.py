"""A hostile decision message (deeply nested, huge, not JSON) is refused with a reason code, so the
decisions agent dead-letters it instead of crashing on it."""

from __future__ import annotations

import pytest

from pipeline.domain.catalog import load_catalog
from pipeline.domain.outcomes import Reason, Rejected
from pipeline.review import DECISION_BYTES_MAX, loads_strict, parse_decision

CATALOG = load_catalog()


@pytest.mark.parametrize("raw", [
    b"[" * 100_000 + b"]" * 100_000,  # would exhaust the parser's recursion
    b'{"a": ' * 50 + b"1" + b"}" * 50,
    b'{"organization_id": "' + b"x" * DECISION_BYTES_MAX + b'"}',
    b"\xff\xfe not json",
])
def test_hostile_decisions_are_rejected_not_raised(raw: bytes) -> None:
    result = parse_decision(raw, CATALOG)
    assert isinstance(result, Rejected) and result.reason is Reason.ENCODING_INVALID


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    assert loads_strict(b'{"reviewer": "[[[[{{{{\\"]]]]"}', depth_max=2, bytes_max=1000) == {"reviewer": '[[[[{{{{"]]]]'}


def test_a_plain_decision_parses() -> None:
    raw = b'{"organization_id": "o", "event_id": "e", "decision": "approve"}'
    assert parse_decision(raw, CATALOG) == {"organization_id": "o", "event_id": "e", "decision": "approve",
                                            "reviewer": "reviewer"}
