"""The classifier's smart codes come from the catalog (schemas/catalog, docs/catalog.md): one source of truth."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import pytest

from pipeline.classify import codes
from pipeline.domain.catalog import catalog_from_data, load_catalog
from pipeline.domain.errors import CatalogError

CATALOG = load_catalog()
CLASSIFY_DIR = Path(codes.__file__).resolve().parent


def _catalog_with(extra: dict | None = None, drop: str | None = None):
    base = resources.files("schemas.catalog")
    chart = json.loads(base.joinpath("chart_of_accounts.json").read_text(encoding="utf-8"))
    data = json.loads(base.joinpath("smart_codes.json").read_text(encoding="utf-8"))
    data["smart_codes"] = [s for s in data["smart_codes"] if s["code"] != drop]
    if extra:
        data["smart_codes"].append(extra)
    return catalog_from_data(chart, data)


def test_kind_codes_are_the_catalogs() -> None:
    structured = {s.kind for s in CATALOG.smart_codes.values() if s.family == "structured"}
    assert set(codes.KIND_CODES) == structured
    for kind, code in codes.KIND_CODES.items():
        assert code == CATALOG.code_for_kind(kind)
    assert (codes.SHRINKAGE, codes.GAIN) == (CATALOG.code_for_kind("inventory.adjusted", "shrinkage"),
                                             CATALOG.code_for_kind("inventory.adjusted", "gain"))


def test_feed_codes_are_exactly_the_catalogs_expense_income_and_suspense_codes() -> None:
    assert set(codes.DEBIT_CODES) == {*CATALOG.codes_of_family("expense"), *CATALOG.codes_of_family("suspense")}
    assert set(codes.CREDIT_CODES) == {*CATALOG.codes_of_family("income"), *CATALOG.codes_of_family("suspense"),
                                       CATALOG.code_for_kind("payment.received")}
    assert set(codes.FEED_CODES) == codes.DEBIT_CODES | codes.CREDIT_CODES
    assert codes.ALL_CODES == frozenset(CATALOG.smart_codes)
    assert all(CATALOG.is_known(c) for c in codes.SHORT_NAMES.values())


def test_a_catalog_code_without_a_short_name_fails_the_check() -> None:
    meals = CATALOG.spec(codes.SHORT_NAMES["MEALS"])
    extra = {"code": "HERA.FIN.EXP.TRAVEL.VISA.v1", "kind": None, "variant": None, "family": "expense",
             "recipe": meals.recipe, "accounts": dict(meals.accounts), "auto_post_threshold": "0.90",
             "amount_cap": None, "description": "visa fees"}
    with pytest.raises(CatalogError, match="without a short name"):
        codes.check_short_names(codes.SHORT_NAMES, _catalog_with(extra))


def test_a_short_name_for_a_code_the_catalog_dropped_fails_the_check() -> None:
    with pytest.raises(CatalogError, match="not in the catalog"):
        codes.check_short_names(codes.SHORT_NAMES, _catalog_with(drop=codes.SHORT_NAMES["RENT"]))


def test_no_other_classifier_module_spells_a_smart_code() -> None:
    literal = re.compile(r"[\"']HERA\.[A-Z0-9_.]+\.v[0-9]+[\"']")
    offenders = [p.name for p in CLASSIFY_DIR.glob("*.py") if p.name != "codes.py" and literal.search(p.read_text())]
    assert offenders == []
