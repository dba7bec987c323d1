"""Journal entries and lines: the value objects every stage passes around.

An entry is balanced when, per currency, the sum of DR amounts equals the sum of CR amounts
exactly (``Decimal``, never float). Amounts are non-negative; the side is explicit.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal

Side = Literal["DR", "CR"]
LINES_PER_ENTRY_MAX = 200


@dataclass(frozen=True, slots=True)
class JournalLine:
    account: str              # GL account code from the chart, e.g. "1100"
    side: Side
    amount: Decimal           # >= 0, quantised to the currency's minor unit
    currency: str             # ISO 4217
    smart_code: str
    description: str | None = None

    def to_json(self) -> dict[str, str]:
        return {"account": self.account, "side": self.side, "amount": str(self.amount),
                "currency": self.currency}


@dataclass(frozen=True, slots=True)
class JournalEntry:
    organization_id: str      # UUID string
    event_id: str
    smart_code: str
    occurred_at: datetime
    currency: str
    lines: tuple[JournalLine, ...]
    source: str
    confidence: Decimal = Decimal("1")
    reference: str | None = None
    description: str | None = None
    counterparty: str | None = None
    created_by: str = "hera-stream"
    metadata: dict[str, object] = field(default_factory=dict)

    @property
    def total(self) -> Decimal:
        """Sum of the debit side (equals the credit side when balanced)."""
        return sum((line.amount for line in self.lines if line.side == "DR"), Decimal(0))


def imbalances(lines: tuple[JournalLine, ...] | list[JournalLine]) -> dict[str, Decimal]:
    """Per currency, debits minus credits, for currencies where that is not zero."""
    net: dict[str, Decimal] = defaultdict(Decimal)
    for line in lines:
        net[line.currency] += line.amount if line.side == "DR" else -line.amount
    return {ccy: diff for ccy, diff in net.items() if diff != 0}


def is_balanced(entry: JournalEntry) -> bool:
    return bool(entry.lines) and not imbalances(entry.lines)
