"""Properties: every event ends balanced or rejected with one reason, never an exception.

* validation never raises, whatever the bytes;
* any valid event under any catalog smart code yields a balanced entry whose amounts are all
  quantised to the currency, or a ``Rejected`` carrying a ``Reason``;
* consistent structured events (lines that add up) always post.
"""

from __future__ import annotations

import json
from decimal import Decimal
from itertools import pairwise
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.domain.catalog import load_catalog
from pipeline.domain.entries import JournalEntry, imbalances
from pipeline.domain.money import minor_units, quantize
from pipeline.domain.outcomes import Reason, Rejected
from pipeline.domain.posting import Split, build_entry, split_tax
from pipeline.domain.validate import Validated, validate_raw

CATALOG = load_catalog()
CODES = sorted(CATALOG.smart_codes)
CURRENCIES = ["USD", "EUR", "JPY", "KWD", "AED", "BHD", "KRW", "INR"]
KINDS = ["invoice.issued", "credit_note.issued", "payment.received", "bill.received", "payment.sent",
         "pos.daily_summary", "payroll.run", "goods.received", "inventory.adjusted", "tax.paid",
         "loan.repayment", "transfer.internal", "owner.draw"]
EXPENSE_CODES = list(CATALOG.codes_of_family("expense"))
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def money_text(minor: int, ccy: str) -> str:
    return str(Decimal(minor).scaleb(-minor_units(ccy)))


def split_parts(draw: Any, total_minor: int, ccy: str, count: int) -> list[str]:
    cuts = sorted(draw(st.lists(st.integers(0, total_minor), min_size=count - 1, max_size=count - 1)))
    bounds = [0, *cuts, total_minor]
    return [money_text(b - a, ccy) for a, b in pairwise(bounds)]


def to_minor(value: Decimal, ccy: str) -> int:
    return int(value.scaleb(minor_units(ccy)))


@st.composite
def events(draw: Any) -> dict[str, Any]:
    ccy = draw(st.sampled_from(CURRENCIES))
    amount_minor = draw(st.integers(1, 10**9))
    feed = draw(st.booleans())
    event: dict[str, Any] = {
        "schema_version": 1, "event_id": draw(st.text(min_size=1, max_size=20).filter(str.isalnum)),
        "organization_id": str(draw(st.uuids())), "occurred_at": "2024-05-01T10:00:00Z",
        "amount": money_text(amount_minor, ccy), "currency": ccy,
    }
    if feed:
        event.update(source=draw(st.sampled_from(["bank_feed", "card_feed"])),
                     direction=draw(st.sampled_from(["debit", "credit"])),
                     description="POS " + draw(st.text(max_size=60)))
    else:
        event.update(source=draw(st.sampled_from(["pos", "erp", "api"])), kind=draw(st.sampled_from(KINDS)))
    if draw(st.booleans()):
        event["tip"] = money_text(draw(st.integers(0, amount_minor)), ccy)
    tax = draw(st.sampled_from(["none", "rate", "amount"]))
    if tax == "rate":
        event["tax"] = {"rate": draw(st.sampled_from(["0", "0.05", "0.075", "0.10", "0.15", "0.2", "1"]))}
    elif tax == "amount":
        event["tax"] = {"amount": money_text(draw(st.integers(0, amount_minor)), ccy)}
    if draw(st.booleans()):
        event["payments"] = [{"method": draw(st.sampled_from(["cash", "card"])), "amount": part}
                             for part in split_parts(draw, amount_minor, ccy, draw(st.integers(1, 3)))]
        if draw(st.booleans()):
            event["fees"] = money_text(draw(st.integers(0, amount_minor // 10)), ccy)
    if draw(st.booleans()):
        employer = draw(st.integers(0, amount_minor))
        gross = amount_minor - employer
        event["payroll"] = {"gross": money_text(gross, ccy), "employer_taxes": money_text(employer, ccy),
                            "employee_withholdings": money_text(draw(st.integers(0, gross)), ccy)}
    if draw(st.booleans()):
        principal, interest = split_parts(draw, amount_minor, ccy, 2)
        event["loan"] = {"principal": principal, "interest": interest}
    event["adjustment"] = draw(st.sampled_from([None, "shrinkage", "gain"]))
    return {k: v for k, v in event.items() if v is not None}


def with_consistent_lines(draw: Any, event: dict[str, Any]) -> dict[str, Any]:
    if event.get("kind") == "transfer.internal":   # a transfer names two distinct money accounts
        event["metadata"] = dict(zip(("from_account", "to_account"), draw(st.permutations(["1000", "1010"])),
                                     strict=True))
    checked = validate_raw(json.dumps(event).encode())
    if not isinstance(checked, Validated):
        return event
    split = split_tax(checked.event)
    if not isinstance(split, Split):
        return event
    ccy = event["currency"]
    parts = split_parts(draw, to_minor(split.net, ccy), ccy, draw(st.integers(1, 4)))
    categories = st.sampled_from([None, "product", "service", *EXPENSE_CODES])
    event["lines"] = [{"amount": part, **({"category": c} if (c := draw(categories)) else {})} for part in parts]
    return event


def assert_sound(result: JournalEntry | Rejected, ccy: str) -> None:
    if isinstance(result, Rejected):
        assert isinstance(result.reason, Reason) and result.detail
        return
    assert isinstance(result, JournalEntry)
    assert len(result.lines) >= 2 and not imbalances(result.lines)
    for line in result.lines:
        assert line.amount > 0 and line.amount == quantize(line.amount, ccy) and line.currency == ccy
        assert line.account in CATALOG.known_accounts


@SETTINGS
@given(st.binary(max_size=2048))
def test_validation_never_raises_on_bytes(payload: bytes) -> None:
    assert isinstance(validate_raw(payload), Validated | Rejected)


@SETTINGS
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                 max_size=6), max_leaves=30))
def test_validation_never_raises_on_json(value: Any) -> None:
    assert isinstance(validate_raw(json.dumps(value).encode()), Validated | Rejected)


@SETTINGS
@given(events(), st.sampled_from(CODES), st.dictionaries(st.integers(0, 3), st.sampled_from(CODES), max_size=3))
def test_any_event_any_code_balances_or_rejects(event: dict[str, Any], code: str,
                                                line_codes: dict[int, str]) -> None:
    checked = validate_raw(json.dumps(event).encode())
    if isinstance(checked, Rejected):
        assert checked.reason in (Reason.TAX_INVALID, Reason.AMOUNT_INVALID), checked
        return
    assert_sound(build_entry(checked.event, code, CATALOG, line_codes=line_codes), event["currency"])


@SETTINGS
@given(st.data())
def test_consistent_structured_events_post(data: st.DataObject) -> None:
    event = with_consistent_lines(data.draw, data.draw(events()))
    checked = validate_raw(json.dumps(event).encode())
    assert isinstance(checked, Validated), checked
    ev = checked.event
    code = CATALOG.code_for_kind(str(ev.kind), ev.adjustment and str(ev.adjustment)) if ev.kind else \
        data.draw(st.sampled_from(EXPENSE_CODES))
    assert code is not None
    result = build_entry(ev, code, CATALOG)
    assert_sound(result, ev.currency)
    if isinstance(result, Rejected):   # only genuinely missing or contradictory parts may stop it
        assert result.reason in (Reason.INCOMPLETE_EVENT, Reason.LINES_MISMATCH, Reason.TAX_INVALID,
                                 Reason.SMART_CODE_INVALID), result
