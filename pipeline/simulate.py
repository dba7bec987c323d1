"""``hera simulate``: what the pipeline would do with each raw event, without broker or database.

Uses the same functions as the agents (validate, classify, decide, build entry) with the standard
chart and catalog, so its answers are the pipeline's answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from pipeline.domain.outcomes import Outcome, Rejected
from pipeline.flow import decide_event

PAYLOAD_BYTES_MAX = 64 * 1024


def simulate(lines: Iterable[bytes], *, classifier: Any, catalog: Any, memory: Any = None
             ) -> Iterator[dict[str, Any]]:
    """One result object per input line, in order (docs/cli.md)."""
    from pipeline.domain.validate import validate_raw

    for raw in lines:
        checked = validate_raw(raw.rstrip(b"\r\n"), payload_bytes_max=PAYLOAD_BYTES_MAX)
        if isinstance(checked, Rejected):
            yield {"event_id": _event_id_of(raw), "outcome": Outcome.REJECTED.value, "smart_code": None,
                   "confidence": None, "reason": checked.reason.value, "lines": []}
            continue
        event = checked.event
        cls = classifier.classify_batch([event], org_memory=memory)[0]
        decision = decide_event(event, cls, catalog)
        outcome = "posted" if decision.outcome == Outcome.POSTED else decision.outcome.value
        yield {
            "event_id": event.event_id,
            "outcome": outcome,
            "smart_code": cls.smart_code,
            "confidence": round(cls.confidence, 4),
            "reason": decision.reason.value if decision.reason else None,
            "lines": [line.to_json() for line in decision.entry.lines]
            if decision.entry is not None and decision.outcome != Outcome.REJECTED else [],
            "explanation": getattr(cls, "explanation", None),
        }


def _event_id_of(raw: bytes) -> str | None:
    """The event id of a rejected line, for the output (card numbers masked; strict JSON: a hostile
    line gets its answer like any other, it never stops the file)."""
    from pipeline.domain.pan import mask_pans
    from pipeline.domain.strict_json import loads_strict

    try:
        value = loads_strict(raw)
    except ValueError:
        return None
    event_id = value.get("event_id") if isinstance(value, dict) else None
    return mask_pans(event_id) if isinstance(event_id, str) else None
