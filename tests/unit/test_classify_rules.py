"""Structured events (docs/catalog.md) classify by rule; incomplete ones are flagged for review."""

from __future__ import annotations

import enum
from decimal import Decimal

import pytest

from pipeline.classify import Classifier, decide
from pipeline.classify.codes import KIND_CODES, SUSPENSE
from pipeline.classify.evaluate import DictEvent


class Kind(enum.Enum):
    PAYROLL = "payroll.run"


COMPLETE = {
    "invoice.issued": {},
    "credit_note.issued": {},
    "payment.received": {},
    "payment.sent": {},
    "pos.daily_summary": {"payments": [{"method": "card", "amount": "100"}]},
    "payroll.run": {"payroll": {"gross": "80", "employee_withholdings": "10", "employer_taxes": "20"}},
    "goods.received": {},
    "tax.paid": {},
    "loan.repayment": {"loan": {"principal": "90", "interest": "10"}},
    "transfer.internal": {},
    "owner.draw": {},
    "bill.received": {"lines": [{"description": "x", "amount": "100", "category": "HERA.FIN.EXP.RENT.OFFICE.v1"}]},
}


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier.load()


def event(kind, **extra):
    return DictEvent({"kind": kind, "amount": "100.00", "currency": "EUR", "source": "erp",
                      "organization_id": "org-1", **extra})


@pytest.mark.parametrize("kind", sorted(COMPLETE))
def test_complete_structured_event_maps_to_its_code_with_full_confidence(classifier: Classifier, kind: str) -> None:
    c = classifier.classify(event(kind, **COMPLETE[kind]))
    assert c.smart_code == KIND_CODES[kind]
    assert c.confidence == 1.0
    assert c.method == "rule"
    assert c.reason is None
    assert decide(c, Decimal("100"), threshold=0.99, amount_cap=None) == ("post", None)


@pytest.mark.parametrize("kind", ["pos.daily_summary", "payroll.run", "loan.repayment", "inventory.adjusted"])
def test_missing_recipe_input_is_incomplete_and_goes_to_review(classifier: Classifier, kind: str) -> None:
    c = classifier.classify(event(kind))
    assert c.reason == "INCOMPLETE_EVENT"
    assert c.confidence < 0.85
    assert decide(c, Decimal("100"), threshold=0.5, amount_cap=None) == ("review", "INCOMPLETE_EVENT")


def test_non_positive_amount_is_incomplete(classifier: Classifier) -> None:
    assert classifier.classify(event("invoice.issued", amount="0")).reason == "INCOMPLETE_EVENT"


@pytest.mark.parametrize(("adjustment", "code"), [("shrinkage", "HERA.FIN.INV.ADJUSTMENT.SHRINKAGE.v1"),
                                                  ("gain", "HERA.FIN.INV.ADJUSTMENT.GAIN.v1")])
def test_inventory_adjustment_direction_picks_the_code(classifier: Classifier, adjustment: str, code: str) -> None:
    c = classifier.classify(event("inventory.adjusted", adjustment=adjustment))
    assert (c.smart_code, c.confidence) == (code, 1.0)


def test_enum_valued_kind_is_understood(classifier: Classifier) -> None:
    e = event("x", payroll={"gross": "1"})
    e.kind = Kind.PAYROLL
    assert classifier.classify(e).smart_code == KIND_CODES["payroll.run"]


def test_unknown_kind_is_suspense(classifier: Classifier) -> None:
    c = classifier.classify(event("spaceship.launched"))
    assert c.smart_code == SUSPENSE
    assert decide(c, Decimal("1"), threshold=0.0, amount_cap=None) == ("review", "SUSPENSE")


def test_bill_lines_without_category_get_codes_from_the_text_model(classifier: Classifier) -> None:
    bill = event("bill.received", counterparty="Vodafone GmbH", lines=[
        {"description": "Mobilfunk Grundgebuehr Vodafone", "amount": "40"},
        {"description": "Office chairs", "amount": "60", "category": "HERA.FIN.EXP.OFFICE.SUPPLIES.v1"},
        {"description": "Widgets for resale", "amount": "0", "category": "product"},
    ])
    c = classifier.classify(bill)
    assert c.smart_code == "HERA.FIN.AP.BILL.RECEIVED.v1"
    assert c.line_codes[0] == "HERA.FIN.EXP.TELECOM.INTERNET.v1"
    assert c.line_codes[1] == "HERA.FIN.EXP.OFFICE.SUPPLIES.v1"
    assert 2 not in c.line_codes                      # product/service categories are left to posting rules
    assert 0 < c.confidence <= 1.0


def test_bill_without_lines_classifies_its_single_line_from_the_descriptor(classifier: Classifier) -> None:
    c = classifier.classify(event("bill.received", counterparty="British Gas", description="Gas and electricity bill"))
    assert c.line_codes == {0: "HERA.FIN.EXP.UTILITIES.ENERGY.v1"}


def test_structured_kind_ignores_a_conflicting_producer_code(classifier: Classifier) -> None:
    c = classifier.classify(event("invoice.issued", smart_code="HERA.FIN.EXP.MEALS.ENTERTAINMENT.v1"))
    assert c.smart_code == KIND_CODES["invoice.issued"]
    assert c.reason == "SMART_CODE_HINT_DISAGREES"   # the producer thought otherwise: a person looks


def test_bill_with_an_unclassifiable_line_never_auto_posts(classifier: Classifier) -> None:
    c = classifier.classify(event("bill.received", lines=[{"description": "ATM WITHDRAWAL 1234", "amount": "100"}]))
    assert c.line_codes == {0: SUSPENSE}
    assert c.confidence == 0.0 and c.reason == "LINE_UNCLASSIFIED"
    assert decide(c, Decimal("100"), threshold=0.85, amount_cap=None) == ("review", "LOW_CONFIDENCE")
