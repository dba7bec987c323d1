"""Business-rule guards against what a producer may claim: default amount caps, the outlier rule,
and a producer's smart code as a hint only (transfers: tests/unit/test_posting.py)."""

from __future__ import annotations

from decimal import Decimal

from pipeline.domain.catalog import load_catalog
from pipeline.domain.outcomes import Reason
from pipeline.domain.outliers import HISTORY_ENTRIES_MIN, AmountHistory, amount_outlier, outlier_for

CATALOG = load_catalog()


def test_every_code_that_can_auto_post_has_a_default_cap() -> None:
    for code, spec in CATALOG.smart_codes.items():
        if spec.auto_post_threshold is not None:
            assert spec.amount_cap is not None and spec.amount_cap > 0, code


def test_the_absurd_amount_of_the_review_never_auto_posts() -> None:
    block = CATALOG.auto_post_block("HERA.FIN.BANK.TRANSFER.INTERNAL.v1", Decimal("1"),
                                    Decimal("999999999999999.99"))
    assert block is Reason.AMOUNT_OVER_CAP


def test_outlier_needs_history_and_a_far_larger_amount() -> None:
    usual = AmountHistory(HISTORY_ENTRIES_MIN, Decimal("120.00"))
    assert amount_outlier(Decimal("2400.00"), usual) is None                 # 20 x usual: still plausible
    assert amount_outlier(Decimal("2400.01"), usual) is Reason.AMOUNT_OUTLIER
    assert amount_outlier(Decimal("1e9"), AmountHistory(HISTORY_ENTRIES_MIN - 1, Decimal("1"))) is None
    assert amount_outlier(Decimal("1e9"), None) is None
    histories = {("org", "CODE"): usual}
    assert outlier_for(histories, "org", "CODE", Decimal("5000")) is Reason.AMOUNT_OUTLIER
    assert outlier_for(histories, "other", "CODE", Decimal("5000")) is None


def test_an_outlier_goes_to_review_through_decide_event() -> None:
    import json

    from pipeline.classify.types import Classification
    from pipeline.domain.validate import Validated, validate_raw
    from pipeline.flow import decide_event

    org = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
    code = "HERA.FIN.EXP.TRAVEL.GROUND.v1"
    checked = validate_raw(json.dumps({
        "schema_version": 1, "event_id": "e", "organization_id": org, "source": "bank_feed",
        "occurred_at": "2026-05-01T10:00:00Z", "amount": "4000.00", "currency": "USD", "direction": "debit",
        "description": "UBER TRIP"}).encode())
    assert isinstance(checked, Validated)
    cls = Classification(code, 0.99, ((code, 0.99),), "model")
    assert decide_event(checked.event, cls, CATALOG).reason is None
    history = {(org, code): AmountHistory(50, Decimal("25.00"))}
    decision = decide_event(checked.event, cls, CATALOG, history)
    assert decision.outcome == "review" and decision.reason is Reason.AMOUNT_OUTLIER
