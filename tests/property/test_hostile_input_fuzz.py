"""Fuzz: hostile bytes never crash validation or decision parsing, and every input gets an outcome.

Over at least 10,000 generated inputs (deep nesting of every shape, repeated keys, mutated and
truncated events, fields of the wrong type, extreme numbers and dates, invalid UTF-8, lone
surrogates, random bytes), ``validate_raw`` and ``review.parse_decision`` each return a value (an
event or decision, or a ``Rejected`` with one stable reason), and the dead letter of the input can
be built. An exception of any kind is a failure.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.domain.catalog import load_catalog
from pipeline.domain.outcomes import Reason, Rejected
from pipeline.domain.validate import Validated, validate_raw
from pipeline.envelopes import dead_letter
from pipeline.review import parse_decision

INPUTS_MIN = 10_000
PER_EXAMPLE = 5
EVENT = {"schema_version": 1, "event_id": "evt-1", "organization_id": "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
         "source": "pos", "kind": "pos.daily_summary", "occurred_at": "2026-05-01T10:00:00Z", "amount": "105.00",
         "currency": "USD", "tip": "5.00", "tax": {"rate": "0.05"}, "payments": [{"method": "card", "amount": "105.00"}],
         "lines": [{"description": "service", "amount": "95.24", "category": "service"}], "metadata": {"a": [1]}}
DECISION = {"organization_id": "3f2504e0-4f89-11d3-9a0c-0305e82c3301", "event_id": "evt-1",
            "decision": "correct", "smart_code": "HERA.FIN.EXP.TRAVEL.GROUND.v1", "reviewer": "ana"}
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-(10**50), 10**50), st.floats(),
                    st.text(max_size=20), st.sampled_from(["0001-01-01T00:00:00Z", "9999-12-31T23:59:59-01:00",
                                                           "00000000-0000-0000-0000-000000000000", "1e999", "NaN",
                                                           "4111 1111 1111 1111", "\ud800", "-1", "0"]))
JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                     st.dictionaries(st.text(max_size=4), inner, max_size=3)),
                    max_leaves=12)


@st.composite
def deep(draw: Any) -> bytes:
    """Nesting of any shape and depth up to the payload limit, closed or not."""
    depth = draw(st.integers(1, 40_000))
    opener = draw(st.sampled_from([b"[", b'{"a":', b'[{"k":', b'{"metadata":']))
    body = opener * (depth // len(opener) + 1)
    if draw(st.booleans()):
        closer = {b"[": b"]", b'{"a":': b"}", b'[{"k":': b"}]", b'{"metadata":': b"}"}[opener]
        body += b"1" + closer * (depth // len(opener) + 1)
    return body


@st.composite
def mutated(draw: Any, base: dict[str, Any]) -> bytes:
    """A valid message changed: a field replaced, repeated or dropped; bytes flipped; cut short."""
    obj = dict(base)
    key = draw(st.sampled_from(sorted(base)))
    how = draw(st.integers(0, 5))
    if how == 0:
        obj[key] = draw(JSON)
    elif how == 1:
        obj.pop(key)
    raw = json.dumps(obj, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    if how == 2:   # the same key again, with another value
        raw = raw[:-1] + b", " + json.dumps(key).encode() + b": " + json.dumps(draw(JSON)).encode() + b"}"
    elif how == 3 and raw:
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at + 1:]
    elif how == 4:
        raw = raw[:draw(st.integers(0, len(raw)))]
    elif how == 5:
        obj[key] = draw(deep()).decode()
        raw = json.dumps(obj).encode()
    return raw


HOSTILE = st.one_of(deep(), mutated(EVENT), mutated(EVENT), mutated(DECISION), st.binary(max_size=200),
                    JSON.map(lambda v: json.dumps(v).encode("utf-8", "surrogatepass")))
CATALOG = load_catalog()
DECISION_KEY = b"k" * 32


def test_hostile_inputs_never_crash_and_all_get_an_outcome() -> None:
    seen: list[int] = [0]
    outcomes: dict[str, int] = {}

    @settings(max_examples=INPUTS_MIN // PER_EXAMPLE + 50, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(HOSTILE, min_size=PER_EXAMPLE, max_size=PER_EXAMPLE))
    def run(raws: list[bytes]) -> None:
        for raw in raws:
            seen[0] += 1
            checked = validate_raw(raw)
            assert isinstance(checked, Validated | Rejected)
            if isinstance(checked, Rejected):
                assert isinstance(checked.reason, Reason)
                dead_letter(raw, checked.reason, checked.detail, stage="validate", topic="raw", partition=0,
                            offset=0, key=raw[:16])
            key = checked.reason.value if isinstance(checked, Rejected) else "valid"
            outcomes[key] = outcomes.get(key, 0) + 1
            decision = parse_decision(raw, CATALOG, DECISION_KEY)
            assert isinstance(decision, dict | Rejected)
            if isinstance(decision, Rejected):
                assert isinstance(decision.reason, Reason)

    run()
    assert seen[0] >= INPUTS_MIN
    # the generator reaches the refusals this test is about
    assert {"JSON_TOO_DEEP", "JSON_DUPLICATE_KEY", "ENCODING_INVALID", "SCHEMA_INVALID"} <= set(outcomes)
