"""Posting rules: a worked example for every recipe of docs/posting-rules.md, rounding, guards."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from pipeline.domain.catalog import Catalog, load_catalog
from pipeline.domain.entries import JournalEntry, is_balanced
from pipeline.domain.outcomes import Reason, Rejected
from pipeline.domain.posting import Split, build_entry, split_tax
from pipeline.domain.validate import Validated, validate_raw
from schemas.events import RawTransactionV1

ORG = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
CATALOG: Catalog = load_catalog()
INVOICE = "HERA.FIN.AR.INVOICE.ISSUED.v1"
MEALS = "HERA.FIN.EXP.MEALS.ENTERTAINMENT.v1"
SOFTWARE = "HERA.FIN.EXP.SOFTWARE.SUBSCRIPTION.v1"
SUSPENSE = "HERA.FIN.GL.SUSPENSE.UNCLASSIFIED.v1"


def ev(**fields: Any) -> RawTransactionV1:
    base: dict[str, Any] = {"schema_version": 1, "event_id": "evt-1", "organization_id": ORG, "source": "erp",
                            "occurred_at": "2024-05-01T10:00:00+02:00", "currency": "USD"}
    base.update(fields)
    result = validate_raw(json.dumps(base).encode())
    assert isinstance(result, Validated), result
    return result.event


def post(event: RawTransactionV1, code: str | None = None, catalog: Catalog = CATALOG,
         **kwargs: Any) -> JournalEntry:
    code = code or CATALOG.code_for_kind(str(event.kind), event.adjustment and str(event.adjustment))
    assert code is not None
    entry = build_entry(event, code, catalog, **kwargs)
    assert isinstance(entry, JournalEntry), entry
    assert is_balanced(entry)
    assert all(line.smart_code == code and line.currency == event.currency for line in entry.lines)
    return entry


def legs(entry: JournalEntry) -> set[tuple[str, str, str]]:
    return {(line.account, line.side, str(line.amount)) for line in entry.lines}


def rejected(event: RawTransactionV1, code: str, **kwargs: Any) -> Reason:
    result = build_entry(event, code, CATALOG, **kwargs)
    assert isinstance(result, Rejected), result
    return result.reason


def test_spec_worked_example_pos() -> None:
    event = ev(source="pos", kind="pos.daily_summary", amount="105.00", tip="5.00", tax={"rate": "0.05"},
               lines=[{"description": "Services", "amount": "95.24", "category": "service"}],
               payments=[{"method": "card", "amount": "105.00"}])
    entry = post(event, "HERA.FIN.POS.DAILY.SUMMARY.v1")
    assert [(x.account, x.side, str(x.amount)) for x in entry.lines] == [
        ("1020", "DR", "105.00"), ("4100", "CR", "95.24"), ("2100", "CR", "4.76"), ("2500", "CR", "5.00")]
    assert entry.total == Decimal("105.00") and entry.organization_id == ORG and entry.event_id == "evt-1"


def test_pos_cash_card_fees_products() -> None:
    event = ev(source="pos", kind="pos.daily_summary", amount="220.00", fees="3.10", tax={"amount": "20.00"},
               lines=[{"amount": "150.00", "category": "product"}, {"amount": "50.00", "category": "service"}],
               payments=[{"method": "cash", "amount": "70.00"}, {"method": "card", "amount": "100.00"},
                         {"method": "card", "amount": "50.00"}])
    assert legs(post(event)) == {("1000", "DR", "70.00"), ("1020", "DR", "146.90"), ("6900", "DR", "3.10"),
                                 ("4000", "CR", "150.00"), ("4100", "CR", "50.00"), ("2100", "CR", "20.00")}


def test_invoice_with_rate_and_no_lines() -> None:
    entry = post(ev(kind="invoice.issued", amount="1050.00", tax={"rate": "0.05"}, reference="INV-1"))
    assert legs(entry) == {("1100", "DR", "1050.00"), ("4000", "CR", "1000.00"), ("2100", "CR", "50.00")}
    assert entry.reference == "INV-1"


def test_invoice_lines_by_category() -> None:
    event = ev(kind="invoice.issued", amount="1200.00", tax={"amount": "200.00"},
               lines=[{"amount": "600.00", "category": "product"}, {"amount": "400.00", "category": "service"}])
    assert legs(post(event)) == {("1100", "DR", "1200.00"), ("4000", "CR", "600.00"),
                                 ("4100", "CR", "400.00"), ("2100", "CR", "200.00")}


def test_credit_note_is_the_invoice_reversed() -> None:
    fields = {"amount": "1050.00", "tax": {"rate": "0.05"}, "lines": [{"amount": "1000.00", "category": "service"}]}
    invoice = post(ev(kind="invoice.issued", **fields))
    credit = post(ev(kind="credit_note.issued", **fields))
    flip = {"DR": "CR", "CR": "DR"}
    assert legs(credit) == {(a, flip[s], amt) for a, s, amt in legs(invoice)}
    assert legs(credit) == {("1100", "CR", "1050.00"), ("4100", "DR", "1000.00"), ("2100", "DR", "50.00")}


@pytest.mark.parametrize(("kind", "expected"), [
    ("payment.received", {("1010", "DR", "500.00"), ("1100", "CR", "500.00")}),
    ("payment.sent", {("2000", "DR", "500.00"), ("1010", "CR", "500.00")}),
    ("tax.paid", {("2100", "DR", "500.00"), ("1010", "CR", "500.00")}),
    ("owner.draw", {("3100", "DR", "500.00"), ("1010", "CR", "500.00")}),
    ("goods.received", {("1200", "DR", "500.00"), ("2000", "CR", "500.00")}),
])
def test_two_leg_recipes(kind: str, expected: set[tuple[str, str, str]]) -> None:
    assert legs(post(ev(kind=kind, amount="500"))) == expected


def test_goods_received_with_input_vat() -> None:
    event = ev(kind="goods.received", amount="110.00", tax={"amount": "10.00"})
    assert legs(post(event)) == {("1200", "DR", "100.00"), ("1300", "DR", "10.00"), ("2000", "CR", "110.00")}


def test_bill_per_line_category_and_classifier_codes() -> None:
    event = ev(kind="bill.received", amount="330.00", tax={"amount": "30.00"},
               lines=[{"description": "Licences", "amount": "200.00", "category": SOFTWARE},
                      {"description": "Team lunch", "amount": "60.00"},
                      {"description": "Misc", "amount": "40.00"}])
    entry = post(event, line_codes={1: MEALS})
    assert legs(entry) == {("6250", "DR", "200.00"), ("6500", "DR", "60.00"), ("6990", "DR", "40.00"),
                           ("1300", "DR", "30.00"), ("2000", "CR", "330.00")}
    assert rejected(event, "HERA.FIN.AP.BILL.RECEIVED.v1", line_codes={1: INVOICE}) is Reason.SMART_CODE_INVALID


def test_bill_without_lines_uses_line_code_zero() -> None:
    event = ev(kind="bill.received", amount="99.00")
    assert legs(post(event, line_codes={0: SOFTWARE})) == {("6250", "DR", "99.00"), ("2000", "CR", "99.00")}
    assert legs(post(event)) == {("6990", "DR", "99.00"), ("2000", "CR", "99.00")}


def test_payroll() -> None:
    event = ev(kind="payroll.run", amount="11000.00",
               payroll={"gross": "10000.00", "employee_withholdings": "2500.00", "employer_taxes": "1000.00"})
    assert legs(post(event)) == {("6000", "DR", "10000.00"), ("6010", "DR", "1000.00"),
                                 ("2200", "CR", "3500.00"), ("2210", "CR", "7500.00")}


def test_inventory_adjustments() -> None:
    shrink = post(ev(kind="inventory.adjusted", adjustment="shrinkage", amount="40.00"))
    gain = post(ev(kind="inventory.adjusted", adjustment="gain", amount="15.00"))
    assert legs(shrink) == {("5100", "DR", "40.00"), ("1200", "CR", "40.00")}
    assert legs(gain) == {("1200", "DR", "15.00"), ("4900", "CR", "15.00")}
    wrong = ev(kind="inventory.adjusted", adjustment="gain", amount="15.00")
    assert rejected(wrong, "HERA.FIN.INV.ADJUSTMENT.SHRINKAGE.v1") is Reason.SMART_CODE_INVALID


def test_loan_repayment() -> None:
    event = ev(kind="loan.repayment", amount="1200.00", loan={"principal": "1000.00", "interest": "200.00"})
    assert legs(post(event)) == {("2400", "DR", "1000.00"), ("7000", "DR", "200.00"), ("1010", "CR", "1200.00")}


def test_internal_transfer_accounts() -> None:
    event = ev(kind="transfer.internal", amount="300.00", metadata={"from_account": "1010", "to_account": "1000"})
    assert legs(post(event)) == {("1000", "DR", "300.00"), ("1010", "CR", "300.00")}
    org = CATALOG.with_overrides(accounts={"1010": "1015"})
    default = post(ev(kind="transfer.internal", amount="300.00", metadata={"to_account": "1016"}),
                   catalog=org.with_overrides(accounts={"1000": "1016"}))
    assert legs(default) == {("1016", "DR", "300.00"), ("1015", "CR", "300.00")}
    unknown = ev(kind="transfer.internal", amount="1.00", metadata={"to_account": "1999"})
    assert rejected(unknown, "HERA.FIN.BANK.TRANSFER.INTERNAL.v1") in (Reason.ACCOUNT_UNKNOWN,
                                                                       Reason.TRANSFER_ACCOUNTS_INVALID)


@pytest.mark.parametrize("metadata", [
    {"from_account": "1010", "to_account": "4000"},     # cash into revenue
    {"from_account": "1010", "to_account": "1010"},     # to itself
    {},                                                 # both default to the bank account
    {"from_account": "6420", "to_account": "1000"},
])
def test_transfers_move_money_only_between_distinct_cash_or_bank_accounts(metadata: dict[str, str]) -> None:
    event = ev(kind="transfer.internal", amount="999999999999999.99", metadata=metadata)
    assert rejected(event, "HERA.FIN.BANK.TRANSFER.INTERNAL.v1") is Reason.TRANSFER_ACCOUNTS_INVALID


def test_feed_debit_bank_and_card() -> None:
    bank = ev(source="bank_feed", direction="debit", description="STARBUCKS 123", amount="8.40")
    card = ev(source="card_feed", direction="debit", description="STARBUCKS 123", amount="8.40")
    assert legs(post(bank, MEALS)) == {("6500", "DR", "8.40"), ("1010", "CR", "8.40")}
    assert legs(post(card, MEALS)) == {("6500", "DR", "8.40"), ("2300", "CR", "8.40")}
    assert legs(post(card, SUSPENSE)) == {("2900", "DR", "8.40"), ("2300", "CR", "8.40")}


def test_feed_credits() -> None:
    def credit(**kw: Any) -> RawTransactionV1:
        return ev(source="bank_feed", direction="credit", description="INCOMING", amount="75.00", **kw)
    assert legs(post(credit(), "HERA.FIN.AR.PAYMENT.RECEIVED.v1")) == {("1010", "DR", "75.00"),
                                                                        ("1100", "CR", "75.00")}
    assert legs(post(credit(), "HERA.FIN.BANK.INTEREST.INCOME.v1")) == {("1010", "DR", "75.00"),
                                                                         ("4800", "CR", "75.00")}
    assert legs(post(credit(), "HERA.FIN.EXP.REFUND.RECEIVED.v1")) == {("1010", "DR", "75.00"),
                                                                        ("6990", "CR", "75.00")}
    refund = credit(lines=[{"amount": "75.00", "category": MEALS}])
    assert legs(post(refund, "HERA.FIN.EXP.REFUND.RECEIVED.v1")) == {("1010", "DR", "75.00"),
                                                                      ("6500", "CR", "75.00")}
    assert legs(post(credit(), MEALS)) == {("1010", "DR", "75.00"), ("6500", "CR", "75.00")}
    assert legs(post(credit(), SUSPENSE)) == {("1010", "DR", "75.00"), ("2900", "CR", "75.00")}


def test_feed_expense_with_vat_and_tip() -> None:
    event = ev(source="card_feed", direction="debit", description="RESTAURANT", amount="60.00", tip="10.00",
               tax={"rate": "0.25"})
    assert legs(post(event, MEALS)) == {("6500", "DR", "50.00"), ("1300", "DR", "10.00"),
                                        ("2300", "CR", "60.00")}


def test_jpy_rounding() -> None:
    event = ev(kind="invoice.issued", currency="JPY", amount="1000", tax={"rate": "0.10"})
    entry = post(event)
    assert legs(entry) == {("1100", "DR", "1000"), ("4000", "CR", "909"), ("2100", "CR", "91")}
    assert all(line.amount.as_tuple().exponent == 0 for line in entry.lines)


def test_kwd_rounding() -> None:
    event = ev(kind="invoice.issued", currency="KWD", amount="10.000", tax={"rate": "0.15"})
    assert legs(post(event)) == {("1100", "DR", "10.000"), ("4000", "CR", "8.696"), ("2100", "CR", "1.304")}


def test_half_even_tax_split() -> None:
    # 10.50 / 1.05 = 10.00 exactly; 0.105 / 1 -> half-even on a tie: 2.345 -> 2.34, 2.355 -> 2.36
    assert split_tax(ev(kind="invoice.issued", amount="2.345", currency="KWD", tax={"rate": "0"})) == \
        Split(net=Decimal("2.345"), tax=Decimal("0.000"), tip=Decimal(0))
    assert split_tax(ev(kind="invoice.issued", amount="4.69", tax={"rate": "1"})) == \
        Split(net=Decimal("2.34"), tax=Decimal("2.35"), tip=Decimal(0))
    assert split_tax(ev(kind="invoice.issued", amount="4.71", tax={"rate": "1"})) == \
        Split(net=Decimal("2.36"), tax=Decimal("2.35"), tip=Decimal(0))


@pytest.mark.parametrize(("fields", "code"), [
    ({"kind": "invoice.issued", "amount": "100.00", "lines": [{"amount": "90.00"}]}, INVOICE),
    ({"kind": "invoice.issued", "amount": "105.00", "tax": {"rate": "0.05"}, "lines": [{"amount": "100.01"}]},
     INVOICE),
    ({"kind": "pos.daily_summary", "amount": "10.00", "payments": [{"method": "cash", "amount": "9.00"}]},
     "HERA.FIN.POS.DAILY.SUMMARY.v1"),
    ({"kind": "pos.daily_summary", "amount": "10.00", "fees": "2.00",
      "payments": [{"method": "cash", "amount": "9.00"}, {"method": "card", "amount": "1.00"}]},
     "HERA.FIN.POS.DAILY.SUMMARY.v1"),
    ({"kind": "payroll.run", "amount": "100.00",
      "payroll": {"gross": "100.00", "employee_withholdings": "0", "employer_taxes": "1.00"}},
     "HERA.FIN.HR.PAYROLL.RUN.v1"),
    ({"kind": "payroll.run", "amount": "100.00",
      "payroll": {"gross": "100.00", "employee_withholdings": "100.01", "employer_taxes": "0"}},
     "HERA.FIN.HR.PAYROLL.RUN.v1"),
    ({"kind": "loan.repayment", "amount": "100.00", "loan": {"principal": "90.00", "interest": "9.00"}},
     "HERA.FIN.LOAN.REPAYMENT.INSTALMENT.v1"),
    ({"kind": "invoice.issued", "amount": "5.00", "tip": "6.00"}, INVOICE),
])
def test_parts_that_do_not_add_up(fields: dict[str, Any], code: str) -> None:
    assert rejected(ev(**fields), code) is Reason.LINES_MISMATCH


def test_tax_larger_than_taxable() -> None:
    assert rejected(ev(kind="invoice.issued", amount="5.00", tax={"amount": "6.00"}), INVOICE) is Reason.TAX_INVALID


@pytest.mark.parametrize(("kind", "code"), [("pos.daily_summary", "HERA.FIN.POS.DAILY.SUMMARY.v1"),
                                            ("payroll.run", "HERA.FIN.HR.PAYROLL.RUN.v1"),
                                            ("loan.repayment", "HERA.FIN.LOAN.REPAYMENT.INSTALMENT.v1")])
def test_incomplete_structured_events(kind: str, code: str) -> None:
    assert rejected(ev(kind=kind, amount="10.00"), code) is Reason.INCOMPLETE_EVENT


def test_unknown_code_and_line_category() -> None:
    event = ev(kind="invoice.issued", amount="10.00")
    assert rejected(event, "HERA.FIN.NOPE.NOPE.NOPE.v1") is Reason.SMART_CODE_INVALID
    bill = ev(kind="bill.received", amount="10.00", lines=[{"amount": "10.00", "category": INVOICE}])
    assert rejected(bill, "HERA.FIN.AP.BILL.RECEIVED.v1") is Reason.SMART_CODE_INVALID


def test_org_account_overrides_apply() -> None:
    org = CATALOG.with_overrides(accounts={"1010": "1015", "6500": "6505"})
    event = ev(source="bank_feed", direction="debit", description="CAFE", amount="8.40")
    assert legs(post(event, MEALS, catalog=org)) == {("6505", "DR", "8.40"), ("1015", "CR", "8.40")}


def test_entry_carries_event_context() -> None:
    event = ev(source="card_feed", direction="debit", description="UBER *TRIP", counterparty="Uber",
               amount="12.00", metadata={"trip": "42"})
    entry = post(event, "HERA.FIN.EXP.TRAVEL.GROUND.v1", created_by="tester")
    assert (entry.source, entry.description, entry.counterparty, entry.created_by) == \
        ("card_feed", "UBER *TRIP", "Uber", "tester")
    assert entry.metadata == {"trip": "42"} and entry.occurred_at == event.occurred_at
    assert entry.confidence == Decimal(1)
