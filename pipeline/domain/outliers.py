"""The outlier rule: an amount far above what an organisation usually posts under a smart code goes
to review (``AMOUNT_OUTLIER``) instead of auto-posting, even under the code's amount cap.

A cap is one number for every organisation; an organisation's own history says what is unusual
for it. ``AmountHistory`` is what the ledger knows of one organisation and smart code (how many
entries, and their 99th-percentile total: one earlier mistake does not widen the window). With
too little history (fewer than ``HISTORY_ENTRIES_MIN`` entries) the rule says nothing.

Pure: values in, a verdict out. ``pipeline.ledger.history`` reads the histories from PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from pipeline.domain.outcomes import Reason

HISTORY_ENTRIES_MIN = 20
OUTLIER_FACTOR_DEFAULT = 20


@dataclass(frozen=True, slots=True)
class AmountHistory:
    entries: int
    p99_total: Decimal


def amount_outlier(amount: Decimal, history: AmountHistory | None, *,
                   factor: int = OUTLIER_FACTOR_DEFAULT) -> Reason | None:
    """``AMOUNT_OUTLIER`` when ``amount`` exceeds ``factor`` times the usual (p99) total, else None."""
    if history is None or history.entries < HISTORY_ENTRIES_MIN or history.p99_total <= 0:
        return None
    return Reason.AMOUNT_OUTLIER if amount > history.p99_total * factor else None


def outlier_for(histories: Mapping[tuple[str, str], AmountHistory], org: str, smart_code: str,
                amount: Decimal, *, factor: int = OUTLIER_FACTOR_DEFAULT) -> Reason | None:
    """``amount_outlier`` with the history of (organisation, smart code) looked up in ``histories``."""
    return amount_outlier(amount, histories.get((org, smart_code)), factor=factor)
