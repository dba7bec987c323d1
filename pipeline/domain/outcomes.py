"""Outcome and reason codes: stable strings, ordered by precedence, never renumbered or renamed.

Every raw event ends in exactly one ``Outcome``. A rejected (dead-lettered) event carries exactly
one ``Reason``; the same string is used in the dead-letter envelope and as a metric label. When
several problems apply, the one listed first here wins (schema before amount before currency …).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    POSTED = "posted"          # journal entry written to the ledger
    REVIEW = "review"          # sent to the human review queue with a suggested entry
    REJECTED = "rejected"      # dead-lettered with a reason code
    DUPLICATE = "duplicate"    # exact redelivery of an event already handled; absorbed, counted
    DEFERRED = "deferred"      # over the org's rate limit; parked, re-admitted later


class Reason(StrEnum):
    """Why an event was rejected (dead-lettered) or sent to review. Precedence = order here."""

    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    ENCODING_INVALID = "ENCODING_INVALID"          # not UTF-8 / not JSON
    SCHEMA_INVALID = "SCHEMA_INVALID"              # missing/extra/ill-typed field
    SCHEMA_VERSION_UNSUPPORTED = "SCHEMA_VERSION_UNSUPPORTED"
    AMOUNT_INVALID = "AMOUNT_INVALID"              # not a decimal, <= 0, too many digits
    CURRENCY_UNKNOWN = "CURRENCY_UNKNOWN"
    ORG_UNKNOWN = "ORG_UNKNOWN"
    DUPLICATE_CONFLICT = "DUPLICATE_CONFLICT"      # same (org, event_id), different content
    LINES_MISMATCH = "LINES_MISMATCH"              # lines/payments/payroll/loan don't add up
    TAX_INVALID = "TAX_INVALID"
    SMART_CODE_INVALID = "SMART_CODE_INVALID"
    ACCOUNT_UNKNOWN = "ACCOUNT_UNKNOWN"
    PERIOD_CLOSED = "PERIOD_CLOSED"
    UNBALANCED = "UNBALANCED"                      # a recipe produced an unbalanced entry (bug guard)
    POISON = "POISON"                              # processing failed repeatedly; moved on
    REVIEW_UNKNOWN = "REVIEW_UNKNOWN"              # a review decision for no queued event
    DECISION_UNSIGNED = "DECISION_UNSIGNED"        # a review decision without the web app's signature
    DECISION_FORGED = "DECISION_FORGED"            # a review decision whose signature does not match
    LINE_UNCLASSIFIED = "LINE_UNCLASSIFIED"        # review: a bill line the model could not place
    # review reasons (not dead-letter):
    LOW_CONFIDENCE = "LOW_CONFIDENCE"
    AMOUNT_OVER_CAP = "AMOUNT_OVER_CAP"
    SUSPENSE = "SUSPENSE"
    INCOMPLETE_EVENT = "INCOMPLETE_EVENT"
    # added later, so last (codes are never renumbered); see SECURITY.md
    EVENT_ID_CONTAINS_PAN = "EVENT_ID_CONTAINS_PAN"  # a card number in the idempotency key
    JSON_DUPLICATE_KEY = "JSON_DUPLICATE_KEY"      # an object repeats a key (which one wins is ambiguous)
    JSON_TOO_DEEP = "JSON_TOO_DEEP"                # nesting beyond the parser's depth limit
    ORG_ID_NIL = "ORG_ID_NIL"                      # organization_id 00000000-0000-0000-0000-000000000000
    OCCURRED_AT_IMPLAUSIBLE = "OCCURRED_AT_IMPLAUSIBLE"  # outside the configured window of business dates
    TRANSFER_ACCOUNTS_INVALID = "TRANSFER_ACCOUNTS_INVALID"  # not two distinct bank/cash accounts
    # review reasons (not dead-letter), added later:
    SMART_CODE_HINT_DISAGREES = "SMART_CODE_HINT_DISAGREES"  # producer's smart_code is not the classifier's
    AMOUNT_OUTLIER = "AMOUNT_OUTLIER"              # far above the organisation's history for the code


REJECTION_PRECEDENCE: tuple[Reason, ...] = tuple(
    r for r in Reason if r not in {Reason.LOW_CONFIDENCE, Reason.AMOUNT_OVER_CAP, Reason.SUSPENSE,
                                   Reason.INCOMPLETE_EVENT, Reason.LINE_UNCLASSIFIED,
                                   Reason.SMART_CODE_HINT_DISAGREES, Reason.AMOUNT_OUTLIER}
)


@dataclass(frozen=True, slots=True)
class Rejected:
    """An expected business failure, as data: exactly one reason code and a short human detail.

    The detail never echoes free-text field values (they may hold card numbers or personal data).
    """

    reason: Reason
    detail: str = ""

    @property
    def outcome(self) -> Outcome:
        return Outcome.REJECTED if self.reason in REJECTION_PRECEDENCE else Outcome.REVIEW
