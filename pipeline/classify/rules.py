"""Structured events (docs/catalog.md): the smart code follows from ``kind``; completeness sets confidence.

A complete event classifies with confidence 1.0. When something its posting recipe needs is
missing (payroll without the payroll breakdown, a POS summary without payments, an inventory
adjustment without its direction, no positive amount), the code is still proposed but with
``INCOMPLETE_EVENT_CONFIDENCE`` and reason ``INCOMPLETE_EVENT``, so it goes to review.

Bill lines without a category are classified by the text model (the classifier does that);
this module only says which lines need it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from pipeline.classify.codes import GAIN, KIND_CODES, SHRINKAGE, SMART_CODE_RE, SUSPENSE, enum_value

INCOMPLETE_EVENT = "INCOMPLETE_EVENT"
UNKNOWN_KIND = "UNKNOWN_KIND"
INCOMPLETE_EVENT_CONFIDENCE = 0.5

# kind → attribute the posting recipe cannot do without
_REQUIRED: dict[str, str] = {
    "pos.daily_summary": "payments",
    "payroll.run": "payroll",
    "loan.repayment": "loan",
    "inventory.adjusted": "adjustment",
}


class StructuredResult(NamedTuple):
    smart_code: str
    confidence: float
    reason: str | None
    lines_to_classify: tuple[int, ...]   # indexes into event.lines (or (0,) for a bill without lines)


def _positive(amount: object) -> bool:
    try:     # a parsed event's amount is a Decimal already: no round trip through a string
        return (amount if isinstance(amount, Decimal) else Decimal(str(amount))) > 0
    except (ArithmeticError, ValueError, TypeError):
        return False


def _is_expense_code(category: object) -> bool:
    return isinstance(category, str) and bool(SMART_CODE_RE.match(category)) and ".EXP." in category


def classify_structured(event: object) -> StructuredResult:
    """Smart code and completeness of an event that carries a ``kind``."""
    kind = enum_value(getattr(event, "kind", None)) or ""
    code = KIND_CODES.get(kind)
    if code is None:
        return StructuredResult(SUSPENSE, 0.0, UNKNOWN_KIND, ())
    if kind == "inventory.adjusted" and enum_value(getattr(event, "adjustment", None)) == "gain":
        code = GAIN
    elif kind == "inventory.adjusted":
        code = SHRINKAGE
    complete = _positive(getattr(event, "amount", None))
    required = _REQUIRED.get(kind)
    if required and not getattr(event, required, None):
        complete = False
    if kind == "inventory.adjusted" and enum_value(getattr(event, "adjustment", None)) not in ("shrinkage", "gain"):
        complete = False
    lines: tuple[int, ...] = ()
    if kind == "bill.received":
        event_lines = getattr(event, "lines", None) or []
        lines = tuple(i for i, line in enumerate(event_lines) if not getattr(line, "category", None))
        if not event_lines:
            lines = (0,)
    if complete:
        return StructuredResult(code, 1.0, None, lines)
    return StructuredResult(code, INCOMPLETE_EVENT_CONFIDENCE, INCOMPLETE_EVENT, lines)


def line_has_expense_code(line: object) -> bool:
    """A bill line whose category is already an expense smart code needs no model."""
    return _is_expense_code(getattr(line, "category", None))
