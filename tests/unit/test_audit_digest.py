"""``audit.entry_digest`` writes its canonical JSON out directly; it must be byte for byte the
``json.dumps`` form, and amounts must digest the same however many trailing zeros they carry."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.ledger.audit import entry_digest

TEXT = st.text(max_size=12)
AMOUNT = st.decimals(min_value=0, max_value=10**12, places=4, allow_nan=False, allow_infinity=False)


def reference(entry_id: str, event_id: str, code: str, ccy: str, total: Decimal, day: str,
              lines: list[tuple[str, str, Decimal, str]]) -> str:
    def plain(value: Decimal) -> str:
        text = format(value.normalize(), "f")
        return "0" if text in ("-0", "0") else text
    body = [entry_id.lower(), event_id, code, ccy, plain(total), day,
            [[a, s, plain(m), c] for a, s, m, c in lines]]
    return hashlib.sha256(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()


@settings(max_examples=300, deadline=None)
@given(st.uuids().map(str), TEXT, TEXT, TEXT, AMOUNT, TEXT, st.lists(st.tuples(TEXT, TEXT, AMOUNT, TEXT), max_size=4))
def test_entry_digest_is_the_json_dumps_form(entry_id, event_id, code, ccy, total, day, lines) -> None:
    assert entry_digest(entry_id, event_id, code, ccy, total, day, lines) == \
        reference(entry_id, event_id, code, ccy, total, day, lines)


def test_trailing_zeros_do_not_change_the_digest() -> None:
    one = entry_digest("A", "e", "C", "USD", Decimal("12.50"), "2026-01-01", [("6420", "DR", "12.5000", "USD")])
    two = entry_digest("a", "e", "C", "USD", "12.5", "2026-01-01", [("6420", "DR", Decimal("12.50"), "USD")])
    assert one == two
    assert one != entry_digest("a", "e", "C", "USD", "12.5", "2026-01-01", [("3100", "DR", "12.5", "USD")])
