"""Smart codes the classifier can emit (docs/catalog.md), and the maps between them.

The catalog proper (accounts, posting recipes, thresholds) is data owned by ``schemas/``; this
module holds only what the classifier needs to know about codes: which codes exist for
structured kinds, which for free-text feed lines, and which are allowed for each direction.
"""

from __future__ import annotations

import re

SMART_CODE_RE = re.compile(r"^HERA\.[A-Z0-9]{3,15}(\.[A-Z0-9_]{2,30}){3,8}\.v[0-9]+$")

SUSPENSE = "HERA.FIN.GL.SUSPENSE.UNCLASSIFIED.v1"
PAYMENT_RECEIVED = "HERA.FIN.AR.PAYMENT.RECEIVED.v1"
INTEREST_INCOME = "HERA.FIN.BANK.INTEREST.INCOME.v1"
REFUND_RECEIVED = "HERA.FIN.EXP.REFUND.RECEIVED.v1"
SHRINKAGE = "HERA.FIN.INV.ADJUSTMENT.SHRINKAGE.v1"
GAIN = "HERA.FIN.INV.ADJUSTMENT.GAIN.v1"

# Short names are used by the corpus generator and in tests; the long code is the contract.
EXPENSE_CODES: dict[str, str] = {
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
}
MONEY_IN_CODES: dict[str, str] = {
    "PAYIN": PAYMENT_RECEIVED,
    "INTEREST": INTEREST_INCOME,
    "REFUND": REFUND_RECEIVED,
}
SHORT_CODES: dict[str, str] = {**EXPENSE_CODES, "SUSPENSE": SUSPENSE, **MONEY_IN_CODES}

# The model's label space, in a fixed order (the artifact stores it too and is checked on load).
FEED_CODES: tuple[str, ...] = tuple(SHORT_CODES.values())
DEBIT_CODES: frozenset[str] = frozenset((*EXPENSE_CODES.values(), SUSPENSE))
CREDIT_CODES: frozenset[str] = frozenset((*MONEY_IN_CODES.values(), SUSPENSE))

KIND_CODES: dict[str, str] = {
    "invoice.issued": "HERA.FIN.AR.INVOICE.ISSUED.v1",
    "credit_note.issued": "HERA.FIN.AR.CREDIT.ISSUED.v1",
    "payment.received": PAYMENT_RECEIVED,
    "bill.received": "HERA.FIN.AP.BILL.RECEIVED.v1",
    "payment.sent": "HERA.FIN.AP.PAYMENT.SENT.v1",
    "pos.daily_summary": "HERA.FIN.POS.DAILY.SUMMARY.v1",
    "payroll.run": "HERA.FIN.HR.PAYROLL.RUN.v1",
    "goods.received": "HERA.FIN.INV.GOODS.RECEIVED.v1",
    "inventory.adjusted": SHRINKAGE,
    "tax.paid": "HERA.FIN.TAX.VAT.PAYMENT.v1",
    "loan.repayment": "HERA.FIN.LOAN.REPAYMENT.INSTALMENT.v1",
    "transfer.internal": "HERA.FIN.BANK.TRANSFER.INTERNAL.v1",
    "owner.draw": "HERA.FIN.EQUITY.OWNER.DRAW.v1",
}

ALL_CODES: frozenset[str] = frozenset((*FEED_CODES, *KIND_CODES.values(), GAIN))


def enum_value(value: object) -> str | None:
    """A plain string for an enum member or a string; ``None`` stays ``None``."""
    if value is None:
        return None
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
    for short, full in SHORT_CODES.items():
        if full == code:
            return short
    return code
