"""Post or review: the auto-post decision for one classification (docs/decisions.md).

A classification posts when its confidence is at least the smart code's threshold and the amount
is under the code's cap (if any; ``at_or_over_cap``, shared with the catalog). Otherwise it goes to review with exactly one reason, by
precedence: ``SUSPENSE`` (never auto-posts, whatever the confidence), ``INCOMPLETE_EVENT``,
``LOW_CONFIDENCE``, ``AMOUNT_OVER_CAP``. Reason strings equal ``pipeline.domain.outcomes.Reason``
values.
"""

from __future__ import annotations

from decimal import Decimal

from pipeline.classify.codes import SUSPENSE
from pipeline.classify.types import Classification
from pipeline.domain.catalog import at_or_over_cap

POST = "post"
REVIEW = "review"
INCOMPLETE_EVENT = "INCOMPLETE_EVENT"


def decide(c: Classification, amount: Decimal, *, threshold: float,
           amount_cap: Decimal | None) -> tuple[str, str | None]:
    """("post", None) or ("review", reason)."""
    if c.smart_code == SUSPENSE:
        return REVIEW, "SUSPENSE"
    if c.reason == INCOMPLETE_EVENT:
        return REVIEW, INCOMPLETE_EVENT
    if c.confidence < threshold:
        return REVIEW, "LOW_CONFIDENCE"
    if at_or_over_cap(amount, amount_cap):
        return REVIEW, "AMOUNT_OVER_CAP"
    return POST, None
