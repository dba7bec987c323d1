"""One handler per topic, each a ``Stage`` for ``agents/runner.py``: what to do with a batch of records
(``process``) and how to make its effects durable and visible (``settle``).

    raw        hera.transactions.raw        validate; on its organisation's partition: events.py at once
    validated  hera.transactions.validated  events.py (admission, classification, ledger)
    deferred   hera.transactions.deferred   re-admit parked events when their quota frees
    decisions  hera.review.decisions        reviewers' decisions, one at a time
    audit      hera.audit                   audit records into the ledger's hash chain

``Context`` is what they share in one worker process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.publish import Publisher
from agents.runtime import Runtime
from pipeline.config import Settings


@dataclass
class Context:
    app: Any
    settings: Settings
    rt: Runtime
    tables: Any  # agents.admission.AdmissionTables
    publisher: Publisher
