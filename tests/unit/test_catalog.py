"""Catalog: the shipped data is complete and valid; a malformed catalog fails fast and says where."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from pipeline.domain.catalog import (
    SMART_CODE_RE,
    Catalog,
    catalog_from_data,
    is_valid_smart_code,
    load_catalog,
)
from pipeline.domain.errors import CatalogError
from pipeline.domain.outcomes import Reason

SPEC_ACCOUNTS = {"1000", "1010", "1020", "1100", "1200", "1300", "1400", "2000", "2100", "2200", "2210", "2300",
                 "2400", "2500", "2900", "3000", "3100", "3200", "4000", "4100", "4800", "4900", "5000", "5100",
                 "6000", "6010", "6100", "6150", "6200", "6250", "6300", "6350", "6400", "6410", "6420", "6430",
                 "6500", "6550", "6600", "6650", "6700", "6750", "6800", "6850", "6900", "6950", "6990", "7000"}
KIND_CODES = {
    "invoice.issued": "HERA.FIN.AR.INVOICE.ISSUED.v1", "credit_note.issued": "HERA.FIN.AR.CREDIT.ISSUED.v1",
    "payment.received": "HERA.FIN.AR.PAYMENT.RECEIVED.v1", "bill.received": "HERA.FIN.AP.BILL.RECEIVED.v1",
    "payment.sent": "HERA.FIN.AP.PAYMENT.SENT.v1", "pos.daily_summary": "HERA.FIN.POS.DAILY.SUMMARY.v1",
    "payroll.run": "HERA.FIN.HR.PAYROLL.RUN.v1", "goods.received": "HERA.FIN.INV.GOODS.RECEIVED.v1",
    "inventory.adjusted": "HERA.FIN.INV.ADJUSTMENT.SHRINKAGE.v1", "tax.paid": "HERA.FIN.TAX.VAT.PAYMENT.v1",
    "loan.repayment": "HERA.FIN.LOAN.REPAYMENT.INSTALMENT.v1",
    "transfer.internal": "HERA.FIN.BANK.TRANSFER.INTERNAL.v1", "owner.draw": "HERA.FIN.EQUITY.OWNER.DRAW.v1",
}
EXPENSE_ACCOUNTS = {
    "MEALS.ENTERTAINMENT": "6500", "STAFF.WELFARE": "6550", "TRAVEL.AIRFARE": "6400", "TRAVEL.LODGING": "6410",
    "TRAVEL.GROUND": "6420", "VEHICLE.FUEL": "6430", "SOFTWARE.SUBSCRIPTION": "6250",
    "TELECOM.INTERNET": "6200", "UTILITIES.ENERGY": "6150", "RENT.OFFICE": "6100", "OFFICE.SUPPLIES": "6300",
    "EQUIPMENT.IT": "6350", "MARKETING.ADVERTISING": "6600", "PROFESSIONAL.FEES": "6650",
    "INSURANCE.PREMIUM": "6700", "TRAINING.EDUCATION": "6750", "SHIPPING.POSTAGE": "6800",
    "REPAIRS.MAINTENANCE": "6850", "BANK.FEES": "6900", "HEALTH.MEDICAL": "6950", "GENERAL.MISC": "6990",
}
SUSPENSE = "HERA.FIN.GL.SUSPENSE.UNCLASSIFIED.v1"


def _raw() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    base = resources.files("schemas.catalog")
    return (json.loads(base.joinpath("chart_of_accounts.json").read_text()),
            json.loads(base.joinpath("smart_codes.json").read_text()))


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def test_chart_has_every_spec_account(catalog: Catalog) -> None:
    assert set(catalog.chart) == SPEC_ACCOUNTS
    chart, _ = _raw()
    assert all(set(row) == {"code", "name", "type", "normal_side"} for row in chart)
    assert catalog.chart["1010"].type == "asset" and catalog.chart["2900"].normal_side == "CR"
    assert catalog.chart["6500"].type == "expense" and catalog.chart["5100"].type == "cost"


def test_every_kind_maps_to_its_code(catalog: Catalog) -> None:
    for kind, code in KIND_CODES.items():
        assert catalog.code_for_kind(kind) == code
        assert catalog.smart_codes[code].auto_post_threshold == Decimal("1.00")
    assert catalog.code_for_kind("inventory.adjusted", "gain") == "HERA.FIN.INV.ADJUSTMENT.GAIN.v1"
    assert catalog.code_for_kind("inventory.adjusted", "shrinkage") == "HERA.FIN.INV.ADJUSTMENT.SHRINKAGE.v1"
    assert catalog.code_for_kind("no.such.kind") is None


def test_expense_codes_and_accounts(catalog: Catalog) -> None:
    for name, account in EXPENSE_ACCOUNTS.items():
        spec = catalog.smart_codes[f"HERA.FIN.EXP.{name}.v1"]
        assert spec.family == "expense" and spec.primary_account == account
        assert spec.auto_post_threshold == Decimal("0.90")
    assert len(catalog.codes_of_family("expense")) == len(EXPENSE_ACCOUNTS)
    assert catalog.smart_codes["HERA.FIN.BANK.INTEREST.INCOME.v1"].primary_account == "4800"
    assert catalog.smart_codes["HERA.FIN.EXP.REFUND.RECEIVED.v1"].family == "income"
    assert catalog.money_accounts == {"bank_feed": "1010", "card_feed": "2300"}


def test_suspense_never_auto_posts(catalog: Catalog) -> None:
    spec = catalog.smart_codes[SUSPENSE]
    assert spec.auto_post_threshold is None and spec.primary_account == "2900"
    assert catalog.auto_post_block(SUSPENSE, Decimal(1), Decimal(1)) is Reason.SUSPENSE
    with pytest.raises(CatalogError, match="suspense"):
        catalog.with_overrides(thresholds={SUSPENSE: "0.5"})


def test_grammar(catalog: Catalog) -> None:
    assert all(SMART_CODE_RE.fullmatch(code) for code in catalog.smart_codes)
    assert is_valid_smart_code("HERA.FIN.AR.INVOICE.ISSUED.v1")
    assert catalog.is_valid_smart_code("HERA.ACME.X1.Y2.Z3.v12")
    for bad in ("HERA.FIN.AR.INVOICE.v1", "hera.fin.ar.invoice.issued.v1", "HERA.FIN.AR.INVOICE.ISSUED",
                "HERA.FI.AR.INVOICE.ISSUED.v1", "HERA.FIN.A.INVOICE.ISSUED.v1", "", None, 5):
        assert not is_valid_smart_code(bad)


def test_auto_post_block(catalog: Catalog) -> None:
    meals = "HERA.FIN.EXP.MEALS.ENTERTAINMENT.v1"
    assert catalog.auto_post_block(meals, Decimal("0.95"), Decimal("10")) is None
    assert catalog.auto_post_block(meals, Decimal("0.5"), Decimal("10")) is Reason.LOW_CONFIDENCE
    capped = catalog.with_overrides(amount_caps={meals: "100"})
    assert capped.auto_post_block(meals, Decimal("0.99"), Decimal("150")) is Reason.AMOUNT_OVER_CAP
    assert catalog.auto_post_block("HERA.NOPE.A1.B2.C3.v1", Decimal(1), Decimal(1)) is Reason.SMART_CODE_INVALID


def test_overrides_return_a_new_catalog(catalog: Catalog) -> None:
    meals = "HERA.FIN.EXP.MEALS.ENTERTAINMENT.v1"
    org = catalog.with_overrides(thresholds={meals: "0.97"}, accounts={"1010": "1015"},
                                 amount_caps={meals: "250.00"})
    assert org.smart_codes[meals].auto_post_threshold == Decimal("0.97")
    assert org.smart_codes[meals].amount_cap == Decimal("250.00")
    assert org.account("1010") == "1015" and org.account("1100") == "1100"
    assert "1015" in org.known_accounts and "1015" not in catalog.known_accounts
    assert catalog.smart_codes[meals].auto_post_threshold == Decimal("0.90")
    assert catalog.account("1010") == "1010"
    assert org.with_overrides(amount_caps={meals: None}).smart_codes[meals].amount_cap is None


@pytest.mark.parametrize(("thresholds", "accounts", "message"), [
    ({"HERA.FIN.EXP.MEALS.ENTERTAINMENT.v1": "1.5"}, {}, "outside"),
    ({"HERA.NOPE.A1.B2.C3.v1": "0.5"}, {}, "unknown smart code"),
    ({}, {"9999": "1015"}, "unknown standard account"),
    ({}, {"1010": "bad code!"}, "not an account code"),
])
def test_bad_overrides(catalog: Catalog, thresholds: dict[str, str], accounts: dict[str, str],
                       message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        catalog.with_overrides(thresholds=thresholds, accounts=accounts)


def _break(mutate: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    chart, codes = copy.deepcopy(_raw())
    mutate(chart, codes)
    return chart, codes


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda ch, sc: sc["smart_codes"][0].update(code="HERA.BAD"), r"smart_codes\[0\].*grammar"),
    (lambda ch, sc: sc["smart_codes"][3]["accounts"].update(payable="9999"),
     r"smart_codes\[3\] \(HERA.FIN.AP.BILL.RECEIVED.v1\): accounts.payable: account '9999' is not in"),
    (lambda ch, sc: sc["smart_codes"][20].update(auto_post_threshold="1.2"), r"smart_codes\[20\].*outside"),
    (lambda ch, sc: sc["smart_codes"][20].update(auto_post_threshold=None), "required"),
    (lambda ch, sc: sc["smart_codes"].append(dict(sc["smart_codes"][0])), "duplicate code"),
    (lambda ch, sc: sc["smart_codes"][0].update(recipe="magic"), "unknown recipe"),
    (lambda ch, sc: sc["smart_codes"][0]["accounts"].pop("tips"), "needs exactly the account roles"),
    (lambda ch, sc: sc["smart_codes"][0].update(family="other"), "family"),
    (lambda ch, sc: sc["smart_codes"][0].pop("description"), "expected exactly the keys"),
    (lambda ch, sc: sc["smart_codes"][-1].update(auto_post_threshold="0.9"), "suspense never auto-posts"),
    (lambda ch, sc: sc["smart_codes"][0].update(amount_cap="-5"), "amount_cap"),
    (lambda ch, sc: sc["money_accounts"].update(card_feed="2301"), "money_accounts.card_feed"),
    (lambda ch, sc: ch.append(dict(ch[0])), r"chart_of_accounts.json: \[48\]: duplicate account code 1000"),
    (lambda ch, sc: ch[1].update(type="asset-ish"), r"chart_of_accounts.json: \[1\] \(1010\): type"),
    (lambda ch, sc: ch[1].update(normal_side="D"), "normal_side"),
])
def test_malformed_catalog_fails_fast(mutate: Any, message: str) -> None:
    chart, codes = _break(mutate)
    with pytest.raises(CatalogError, match=message):
        catalog_from_data(chart, codes)


def test_load_from_directory(tmp_path: Path) -> None:
    chart, codes = _raw()
    (tmp_path / "chart_of_accounts.json").write_text(json.dumps(chart))
    (tmp_path / "smart_codes.json").write_text("{not json")
    with pytest.raises(CatalogError, match=r"smart_codes.json: not valid JSON"):
        load_catalog(tmp_path)
    (tmp_path / "smart_codes.json").write_text(json.dumps(codes))
    assert set(load_catalog(tmp_path).smart_codes) == set(load_catalog().smart_codes)
