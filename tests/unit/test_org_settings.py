"""Organisation settings: unknown keys and bad values refused; overrides make the org's catalog."""

from __future__ import annotations

from decimal import Decimal

from pipeline.domain.catalog import load_catalog
from pipeline.domain.org_settings import org_catalog, overrides, problems

CATALOG = load_catalog()
GROUND = "HERA.FIN.EXP.TRAVEL.GROUND.v1"


def test_unknown_keys_and_bad_values_are_refused() -> None:
    assert problems({"rate_limit_per_minute": 10, "thresholds": {GROUND: 0.99}}, CATALOG) == []
    assert any("unknown key 'threshold'" in p for p in problems({"threshold": {GROUND: 0.99}}))
    assert problems({"rate_limit_burst": 0}) == ["rate_limit_burst must be a whole number of at least 1"]
    assert problems({"accounts": ["1010"]}) == ["accounts must be a JSON object"]
    assert problems({"thresholds": {"HERA.FIN.NOPE.NOPE.NOPE.v1": 0.9}}, CATALOG)  # unknown code
    assert problems({"accounts": {"9999": "1015"}}, CATALOG)  # unknown standard account


def test_org_catalog_applies_threshold_cap_and_accounts() -> None:
    settings = {"thresholds": {GROUND: 1.0}, "amount_caps": {GROUND: "100.00"}, "accounts": {"1010": "1015"}}
    assert overrides(settings) and not overrides({"rate_limit_per_minute": 5})
    org = org_catalog(CATALOG, settings)
    assert org.auto_post_block(GROUND, Decimal("0.999"), Decimal("1")) == "LOW_CONFIDENCE"
    assert org.auto_post_block(GROUND, Decimal("1"), Decimal("100.00")) == "AMOUNT_OVER_CAP"
    assert org.auto_post_block(GROUND, Decimal("1"), Decimal("99.99")) is None
    assert org.account("1010") == "1015"
