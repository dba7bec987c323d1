"""Error tree of the domain package, and ``ensure`` (an assertion that survives ``python -O``).

    HeraError                 root of every exception the product raises on purpose
    ├── InvariantViolation    a bug: a ledger invariant would be broken (never expected input)
    └── CatalogError          the catalog data file is malformed (fail fast at start)

Expected business failures (bad input, unbalanced recipe, unknown account) are *not*
exceptions: they come back as data carrying a ``Reason`` code.
"""

from __future__ import annotations


class HeraError(Exception):
    """Root of the product's exceptions."""


class InvariantViolation(HeraError):
    """A ledger invariant would be broken; this is a bug, not bad input."""


class CatalogError(HeraError):
    """The smart-code catalog or chart of accounts is malformed."""


def ensure(condition: bool, message: str) -> None:
    """Raise ``InvariantViolation`` unless ``condition`` holds (unlike ``assert``, never stripped)."""
    if not condition:
        raise InvariantViolation(message)
