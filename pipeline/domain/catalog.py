"""The catalog: chart of accounts and smart codes (with posting recipes and auto-post thresholds).

The catalog is data (``schemas/catalog/*.json``), not code. This module loads it once at start,
validates it (fail fast: a malformed catalog raises ``CatalogError`` naming the file and entry)
and exposes it as an immutable ``Catalog`` value. Organisations may override thresholds, amount
caps and accounts (an account override remaps a standard code, e.g. ``1010`` -> ``1015``);
``with_overrides`` returns a new ``Catalog`` and leaves the standard one untouched.

Smart-code spec shape (one JSON object per code)::

    code, kind (§3a event kind or null), variant (e.g. "gain" for inventory.adjusted, else null),
    family ("structured" | "expense" | "income" | "suspense"), recipe (how the entry is built,
    see RECIPE_ROLES), accounts (recipe role -> standard account code),
    auto_post_threshold (decimal string in [0, 1]; null = never auto-posts), amount_cap, description

Reading package data is the only I/O here, done once by ``load_catalog`` before any event flows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from pipeline.domain.errors import CatalogError
from pipeline.domain.outcomes import Reason

SMART_CODE_RE = re.compile(r"^HERA\.[A-Z0-9]{3,15}(\.[A-Z0-9_]{2,30}){3,8}\.v[0-9]+$")
ACCOUNT_CODE_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,31}$")
CHART_FILE = "chart_of_accounts.json"
SMART_CODES_FILE = "smart_codes.json"
CATALOG_PACKAGE = "schemas.catalog"

AccountType = Literal["asset", "liability", "equity", "revenue", "cost", "expense"]
Family = Literal["structured", "expense", "income", "suspense"]
ACCOUNT_TYPES = ("asset", "liability", "equity", "revenue", "cost", "expense")
FAMILIES = ("structured", "expense", "income", "suspense")

RECIPE_ROLES: Mapping[str, frozenset[str]] = MappingProxyType({
    "invoice": frozenset({"receivable", "revenue_product", "revenue_service", "output_tax", "tips"}),
    "credit_note": frozenset({"receivable", "revenue_product", "revenue_service", "output_tax", "tips"}),
    "money_in": frozenset({"bank", "counter"}),
    "money_out": frozenset({"counter", "bank"}),
    "bill": frozenset({"payable", "input_tax", "expense_default"}),
    "pos_summary": frozenset({"cash", "card_clearing", "card_fees", "revenue_product", "revenue_service",
                              "output_tax", "tips"}),
    "payroll": frozenset({"wages", "employer_taxes", "payroll_liabilities", "net_pay"}),
    "goods_received": frozenset({"inventory", "input_tax", "payable"}),
    "fixed": frozenset({"debit", "credit"}),
    "loan_repayment": frozenset({"principal", "interest", "bank"}),
    "transfer": frozenset({"bank"}),
    "expense": frozenset({"expense", "input_tax", "bank"}),
    "refund": frozenset({"expense", "input_tax", "bank"}),
    "suspense": frozenset({"suspense", "bank"}),
})
"""Every recipe and the account roles its spec must name (see ``pipeline.domain.posting``)."""

PRIMARY_ROLE: Mapping[str, str] = MappingProxyType({
    "invoice": "receivable", "credit_note": "receivable", "money_in": "counter", "money_out": "counter",
    "bill": "payable", "pos_summary": "card_clearing", "payroll": "wages", "goods_received": "inventory",
    "fixed": "debit", "loan_repayment": "principal", "transfer": "bank", "expense": "expense",
    "refund": "expense", "suspense": "suspense",
})
SPEC_KEYS = frozenset({"code", "kind", "variant", "family", "recipe", "accounts", "auto_post_threshold",
                       "amount_cap", "description"})


def is_valid_smart_code(value: object) -> bool:
    """True when ``value`` matches the HERA smart-code grammar (it may still be absent from the catalog)."""
    return isinstance(value, str) and SMART_CODE_RE.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class Account:
    code: str
    name: str
    type: AccountType
    normal_side: Literal["DR", "CR"]


@dataclass(frozen=True, slots=True)
class SmartCodeSpec:
    code: str
    kind: str | None
    variant: str | None
    family: Family
    recipe: str
    accounts: Mapping[str, str]           # recipe role -> standard account code
    auto_post_threshold: Decimal | None   # None: never auto-posts (suspense)
    amount_cap: Decimal | None
    description: str

    @property
    def primary_account(self) -> str:
        """The account that characterises the code (the expense account for an expense code)."""
        return self.accounts[PRIMARY_ROLE[self.recipe]]


def at_or_over_cap(amount: Decimal, cap: Decimal | None) -> bool:
    """docs/decisions.md: an entry auto-posts only *under* its code's amount cap; at or over it, it is reviewed.
    The one place this comparison is made (the catalog and ``classify.decide`` both ask here)."""
    return cap is not None and amount >= cap


@dataclass(frozen=True, slots=True)
class Catalog:
    chart: Mapping[str, Account]
    smart_codes: Mapping[str, SmartCodeSpec]
    money_accounts: Mapping[str, str]     # feed source -> standard money account (bank_feed 1010 …)
    account_overrides: Mapping[str, str] = field(default_factory=dict)   # standard -> org's own code
    known_accounts: frozenset[str] = field(init=False, repr=False, compare=False)
    """Account codes an entry may use: the chart plus the organisation's override targets."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "known_accounts",
                           frozenset(self.chart) | frozenset(self.account_overrides.values()))

    def spec(self, code: str) -> SmartCodeSpec | None:
        return self.smart_codes.get(code)

    def is_known(self, code: str) -> bool:
        return code in self.smart_codes

    @staticmethod
    def is_valid_smart_code(value: object) -> bool:
        return is_valid_smart_code(value)

    def code_for_kind(self, kind: str, variant: str | None = None) -> str | None:
        """The smart code of a §3a event kind; ``variant`` picks e.g. shrinkage vs gain.

        Without a variant (or for a kind that has none) the first code of the kind is returned.
        """
        matches = [s for s in self.smart_codes.values() if s.kind == kind]
        exact = [s for s in matches if variant is not None and s.variant == variant]
        plain = [s for s in matches if variant is None or s.variant is None]
        chosen = exact or plain
        return chosen[0].code if chosen else None

    def codes_of_family(self, family: Family) -> tuple[str, ...]:
        return tuple(code for code, spec in self.smart_codes.items() if spec.family == family)

    def account(self, standard_code: str) -> str:
        """The organisation's account for a standard account code (identity unless overridden)."""
        return self.account_overrides.get(standard_code, standard_code)

    def auto_post_block(self, code: str, confidence: Decimal, amount: Decimal) -> Reason | None:
        """Why an entry of ``code`` must go to review instead of auto-posting (None: it may auto-post)."""
        spec = self.smart_codes.get(code)
        if spec is None:
            return Reason.SMART_CODE_INVALID
        if spec.auto_post_threshold is None:
            return Reason.SUSPENSE
        if confidence < spec.auto_post_threshold:
            return Reason.LOW_CONFIDENCE
        if at_or_over_cap(amount, spec.amount_cap):
            return Reason.AMOUNT_OVER_CAP
        return None

    def with_overrides(self, thresholds: Mapping[str, Any] | None = None,
                       accounts: Mapping[str, str] | None = None,
                       amount_caps: Mapping[str, Any] | None = None) -> Catalog:
        """A copy with an organisation's thresholds, amount caps (None removes a cap) and account remaps."""
        where = "organisation overrides"
        codes = dict(self.smart_codes)
        for code, raw in (thresholds or {}).items():
            spec = _known(codes, code, where)
            if spec.family == "suspense":
                raise CatalogError(f"{where}: {code}: suspense never auto-posts; no threshold allowed")
            codes[code] = replace(spec, auto_post_threshold=_threshold(raw, f"{where}: {code}"))
        for code, raw in (amount_caps or {}).items():
            spec = _known(codes, code, where)
            codes[code] = replace(spec, amount_cap=_cap(raw, f"{where}: {code}"))
        remap = dict(self.account_overrides)
        for standard, own in (accounts or {}).items():
            if standard not in self.chart:
                raise CatalogError(f"{where}: account override of unknown standard account {standard!r}")
            if not isinstance(own, str) or not ACCOUNT_CODE_RE.fullmatch(own):
                raise CatalogError(f"{where}: account override {standard!r} -> {own!r} is not an account code")
            remap[standard] = own
        return replace(self, smart_codes=MappingProxyType(codes), account_overrides=MappingProxyType(remap))


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Read and validate the catalog from ``path`` (a directory with both files) or package data."""
    if path is None:
        base = resources.files(CATALOG_PACKAGE)
        chart_text = base.joinpath(CHART_FILE).read_text(encoding="utf-8")
        codes_text = base.joinpath(SMART_CODES_FILE).read_text(encoding="utf-8")
    else:
        chart_text = (Path(path) / CHART_FILE).read_text(encoding="utf-8")
        codes_text = (Path(path) / SMART_CODES_FILE).read_text(encoding="utf-8")
    return catalog_from_data(_json(chart_text, CHART_FILE), _json(codes_text, SMART_CODES_FILE))


def catalog_from_data(chart_data: Any, codes_data: Any) -> Catalog:
    """Build a validated ``Catalog`` from the decoded JSON of both files (raises ``CatalogError``)."""
    chart = _parse_chart(chart_data)
    if not isinstance(codes_data, dict) or set(codes_data) != {"version", "money_accounts", "smart_codes"}:
        raise CatalogError(f"{SMART_CODES_FILE}: expected an object with keys version, money_accounts, "
                           "smart_codes")
    if codes_data["version"] != 1:
        raise CatalogError(f"{SMART_CODES_FILE}: unsupported version {codes_data['version']!r}")
    money = codes_data["money_accounts"]
    if not isinstance(money, dict) or set(money) != {"bank_feed", "card_feed"}:
        raise CatalogError(f"{SMART_CODES_FILE}: money_accounts must name bank_feed and card_feed")
    for source, account in money.items():
        _require_account(chart, account, f"{SMART_CODES_FILE}: money_accounts.{source}")
    entries = codes_data["smart_codes"]
    if not isinstance(entries, list) or not entries:
        raise CatalogError(f"{SMART_CODES_FILE}: smart_codes must be a non-empty list")
    codes: dict[str, SmartCodeSpec] = {}
    kinds: set[tuple[str, str | None]] = set()
    for index, entry in enumerate(entries):
        spec = _parse_spec(entry, chart, f"{SMART_CODES_FILE}: smart_codes[{index}]")
        if spec.code in codes:
            raise CatalogError(f"{SMART_CODES_FILE}: smart_codes[{index}]: duplicate code {spec.code}")
        if spec.kind is not None:
            if (spec.kind, spec.variant) in kinds:
                raise CatalogError(f"{SMART_CODES_FILE}: smart_codes[{index}] ({spec.code}): kind "
                                   f"{spec.kind!r} variant {spec.variant!r} already mapped")
            kinds.add((spec.kind, spec.variant))
        codes[spec.code] = spec
    return Catalog(chart=MappingProxyType(chart), smart_codes=MappingProxyType(codes),
                   money_accounts=MappingProxyType(dict(money)), account_overrides=MappingProxyType({}))


def _json(text: str, name: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogError(f"{name}: not valid JSON: {exc}") from exc


def _parse_chart(data: Any) -> dict[str, Account]:
    if not isinstance(data, list) or not data:
        raise CatalogError(f"{CHART_FILE}: expected a non-empty JSON list of accounts")
    chart: dict[str, Account] = {}
    for index, row in enumerate(data):
        where = f"{CHART_FILE}: [{index}]"
        if not isinstance(row, dict) or set(row) != {"code", "name", "type", "normal_side"}:
            raise CatalogError(f"{where}: expected exactly the keys code, name, type, normal_side")
        code, name, kind, side = row["code"], row["name"], row["type"], row["normal_side"]
        if not isinstance(code, str) or not ACCOUNT_CODE_RE.fullmatch(code):
            raise CatalogError(f"{where}: bad account code {code!r}")
        if not isinstance(name, str) or not name.strip():
            raise CatalogError(f"{where} ({code}): name must be a non-empty string")
        if kind not in ACCOUNT_TYPES:
            raise CatalogError(f"{where} ({code}): type {kind!r} not one of {ACCOUNT_TYPES}")
        if side not in ("DR", "CR"):
            raise CatalogError(f"{where} ({code}): normal_side {side!r} must be DR or CR")
        if code in chart:
            raise CatalogError(f"{where}: duplicate account code {code}")
        chart[code] = Account(code=code, name=name, type=kind, normal_side=side)
    return chart


def _parse_spec(entry: Any, chart: Mapping[str, Account], where: str) -> SmartCodeSpec:
    if not isinstance(entry, dict) or set(entry) != SPEC_KEYS:
        raise CatalogError(f"{where}: expected exactly the keys {sorted(SPEC_KEYS)}")
    code = entry["code"]
    if not is_valid_smart_code(code):
        raise CatalogError(f"{where}: {code!r} does not match the smart-code grammar {SMART_CODE_RE.pattern}")
    where = f"{where} ({code})"
    for key in ("kind", "variant"):
        if entry[key] is not None and (not isinstance(entry[key], str) or not entry[key]):
            raise CatalogError(f"{where}: {key} must be a non-empty string or null")
    if entry["family"] not in FAMILIES:
        raise CatalogError(f"{where}: family {entry['family']!r} not one of {FAMILIES}")
    if (entry["family"] == "structured") != (entry["kind"] is not None):
        raise CatalogError(f"{where}: a structured code needs a kind, and only a structured code has one")
    recipe = entry["recipe"]
    if recipe not in RECIPE_ROLES:
        raise CatalogError(f"{where}: unknown recipe {recipe!r}; known: {sorted(RECIPE_ROLES)}")
    accounts = entry["accounts"]
    if not isinstance(accounts, dict) or set(accounts) != RECIPE_ROLES[recipe]:
        raise CatalogError(f"{where}: recipe {recipe!r} needs exactly the account roles "
                           f"{sorted(RECIPE_ROLES[recipe])}")
    for role, account in accounts.items():
        _require_account(chart, account, f"{where}: accounts.{role}")
    threshold = entry["auto_post_threshold"]
    if entry["family"] == "suspense" and threshold is not None:
        raise CatalogError(f"{where}: suspense never auto-posts; auto_post_threshold must be null")
    if entry["family"] != "suspense" and threshold is None:
        raise CatalogError(f"{where}: auto_post_threshold is required")
    if not isinstance(entry["description"], str) or not entry["description"].strip():
        raise CatalogError(f"{where}: description must be a non-empty string")
    return SmartCodeSpec(
        code=code, kind=entry["kind"], variant=entry["variant"], family=entry["family"], recipe=recipe,
        accounts=MappingProxyType(dict(accounts)),
        auto_post_threshold=None if threshold is None else _threshold(threshold, where),
        amount_cap=_cap(entry["amount_cap"], where), description=entry["description"])


def _require_account(chart: Mapping[str, Account], account: Any, where: str) -> None:
    if account not in chart:
        raise CatalogError(f"{where}: account {account!r} is not in {CHART_FILE}")


def _decimal(raw: Any, what: str, where: str) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise CatalogError(f"{where}: {what} must be a decimal string, got {raw!r}")
    try:
        value = Decimal(str(raw))
    except InvalidOperation as exc:
        raise CatalogError(f"{where}: {what} {raw!r} is not a decimal") from exc
    if not value.is_finite():
        raise CatalogError(f"{where}: {what} {raw!r} is not finite")
    return value


def _threshold(raw: Any, where: str) -> Decimal:
    value = _decimal(raw, "auto_post_threshold", where)
    if not Decimal(0) <= value <= Decimal(1):
        raise CatalogError(f"{where}: auto_post_threshold {raw!r} is outside [0, 1]")
    return value


def _cap(raw: Any, where: str) -> Decimal | None:
    if raw is None:
        return None
    value = _decimal(raw, "amount_cap", where)
    if value <= 0:
        raise CatalogError(f"{where}: amount_cap {raw!r} must be > 0")
    return value


def _known(codes: Mapping[str, SmartCodeSpec], code: str, where: str) -> SmartCodeSpec:
    spec = codes.get(code)
    if spec is None:
        raise CatalogError(f"{where}: unknown smart code {code!r}")
    return spec
