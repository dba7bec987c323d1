"""Smart codes the classifier can emit, read from the catalog (docs/catalog.md), and the maps between them.

The catalog (``schemas/catalog/smart_codes.json``, loaded by ``pipeline.domain.catalog``) is the
one source of truth: which codes exist, which kind each structured event maps to, which codes
are expenses (money out), income (money in) or suspense. This module derives the classifier's
views from it when imported:

- ``KIND_CODES``: event kind → code (structured family, the variant-less code of each kind);
  ``SHRINKAGE`` / ``GAIN`` are the two variants of ``inventory.adjusted``;
- ``SUSPENSE``: the one code of the suspense family;
- money out: the expense family; money in: the ``payment.received`` code plus the income family.

The only thing kept here is the classifier's *short names* for feed codes (``MEALS``,
``WELFARE`` …): the lexicon, the corpus generator and the model's calibrator speak in them. They
are names, not codes: ``SHORT_NAMES`` maps each to a catalog code, and importing this module
fails (``CatalogError``) if a feed code of the catalog has no short name, or a short name points
at a code the catalog does not have (tests/unit/test_classify_codes_catalog.py checks it too).
"""

from __future__ import annotations

from enum import StrEnum

from pipeline.domain import catalog as _catalog
from pipeline.domain.errors import CatalogError

SMART_CODE_RE = _catalog.SMART_CODE_RE   # the catalog's grammar of a code

_CATALOG = _catalog.load_catalog()


def _one(codes: tuple[str, ...], what: str) -> str:
    if len(codes) != 1:
        raise CatalogError(f"classifier: the catalog must have exactly one {what}, found {list(codes)}")
    return codes[0]


def _kind_code(kind: str, variant: str | None = None) -> str:
    code = _CATALOG.code_for_kind(kind, variant)
    if code is None:
        raise CatalogError(f"classifier: the catalog has no code for kind {kind!r} (variant {variant!r})")
    return code


SUSPENSE = _one(_CATALOG.codes_of_family("suspense"), "suspense code")
PAYMENT_RECEIVED = _kind_code("payment.received")
SHRINKAGE = _kind_code("inventory.adjusted", "shrinkage")
GAIN = _kind_code("inventory.adjusted", "gain")
KIND_CODES: dict[str, str] = {spec.kind: _kind_code(spec.kind) for spec in _CATALOG.smart_codes.values()
                              if spec.family == "structured" and spec.kind}

# Short names of the feed codes (names only; the code strings are checked against the catalog below).
SHORT_NAMES: dict[str, str] = {
    "MEALS": "HERA.FIN.EXP.MEALS.ENTERTAINMENT.v1",
    "WELFARE": "HERA.FIN.EXP.STAFF.WELFARE.v1",
    "AIR": "HERA.FIN.EXP.TRAVEL.AIRFARE.v1",
    "LODGING": "HERA.FIN.EXP.TRAVEL.LODGING.v1",
    "GROUND": "HERA.FIN.EXP.TRAVEL.GROUND.v1",
    "FUEL": "HERA.FIN.EXP.VEHICLE.FUEL.v1",
    "SOFTWARE": "HERA.FIN.EXP.SOFTWARE.SUBSCRIPTION.v1",
    "TELECOM": "HERA.FIN.EXP.TELECOM.INTERNET.v1",
    "UTIL": "HERA.FIN.EXP.UTILITIES.ENERGY.v1",
    "RENT": "HERA.FIN.EXP.RENT.OFFICE.v1",
    "SUPPLIES": "HERA.FIN.EXP.OFFICE.SUPPLIES.v1",
    "IT": "HERA.FIN.EXP.EQUIPMENT.IT.v1",
    "MARKETING": "HERA.FIN.EXP.MARKETING.ADVERTISING.v1",
    "PROF": "HERA.FIN.EXP.PROFESSIONAL.FEES.v1",
    "INSURANCE": "HERA.FIN.EXP.INSURANCE.PREMIUM.v1",
    "TRAINING": "HERA.FIN.EXP.TRAINING.EDUCATION.v1",
    "SHIPPING": "HERA.FIN.EXP.SHIPPING.POSTAGE.v1",
    "REPAIRS": "HERA.FIN.EXP.REPAIRS.MAINTENANCE.v1",
    "BANKFEES": "HERA.FIN.EXP.BANK.FEES.v1",
    "HEALTH": "HERA.FIN.EXP.HEALTH.MEDICAL.v1",
    "MISC": "HERA.FIN.EXP.GENERAL.MISC.v1",
    "SUSPENSE": SUSPENSE,
    "PAYIN": PAYMENT_RECEIVED,
    "INTEREST": "HERA.FIN.BANK.INTEREST.INCOME.v1",
    "REFUND": "HERA.FIN.EXP.REFUND.RECEIVED.v1",
}


def check_short_names(short_names: dict[str, str], catalog=_CATALOG) -> None:
    """Raise ``CatalogError`` unless ``short_names`` names exactly the catalog's feed codes."""
    feed = {*catalog.codes_of_family("expense"), *catalog.codes_of_family("income"),
            *catalog.codes_of_family("suspense"), catalog.code_for_kind("payment.received")}
    named = set(short_names.values())
    if len(named) != len(short_names):
        raise CatalogError("classifier: two short names for one code")
    if named != feed:
        raise CatalogError(f"classifier short names diverge from the catalog: not in the catalog "
                           f"{sorted(named - feed)}, without a short name {sorted(feed - named)}")


check_short_names(SHORT_NAMES)

_SHORT_OF = {code: short for short, code in SHORT_NAMES.items()}
_EXPENSE = frozenset(_CATALOG.codes_of_family("expense"))
_MONEY_IN = frozenset((PAYMENT_RECEIVED, *_CATALOG.codes_of_family("income")))
INTEREST_INCOME = SHORT_NAMES["INTEREST"]
REFUND_RECEIVED = SHORT_NAMES["REFUND"]

EXPENSE_CODES: dict[str, str] = {s: c for s, c in SHORT_NAMES.items() if c in _EXPENSE}
MONEY_IN_CODES: dict[str, str] = {s: c for s, c in SHORT_NAMES.items() if c in _MONEY_IN}
SHORT_CODES: dict[str, str] = {**EXPENSE_CODES, "SUSPENSE": SUSPENSE, **MONEY_IN_CODES}

# The model's label space, in a fixed order (the artifact stores it too and is checked on load).
FEED_CODES: tuple[str, ...] = tuple(SHORT_CODES.values())
DEBIT_CODES: frozenset[str] = frozenset((*_EXPENSE, SUSPENSE))
CREDIT_CODES: frozenset[str] = frozenset((*_MONEY_IN, SUSPENSE))

ALL_CODES: frozenset[str] = frozenset(_CATALOG.smart_codes)


def enum_value(value: object) -> str | None:
    """A plain string for an enum member or a string; ``None`` stays ``None``."""
    if value is None:
        return None
    if isinstance(value, StrEnum):      # its text is its value: no trip through Enum's ``value`` property
        return str.__str__(value)
    raw = getattr(value, "value", value)
    return str(raw)


def allowed_codes(direction: str | None) -> frozenset[str]:
    """Codes a feed line may receive: money out → expenses, money in → receipts (+ suspense)."""
    if direction == "credit":
        return CREDIT_CODES
    if direction == "debit":
        return DEBIT_CODES
    return frozenset(FEED_CODES)


def short_name(code: str) -> str:
    """The short name of a feed code (``MEALS``), or the code itself when it has none."""
    return _SHORT_OF.get(code, code)
