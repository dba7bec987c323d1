"""Review decisions: a finance reviewer approves the suggested smart code or corrects it.

A decision (on ``hera.review.decisions``) posts the entry with the final smart code, closes the
review item, and teaches the organisation's classifier memory at once, so the next event from the
same counterparty benefits. Decisions are idempotent: a decision for an item already resolved is
absorbed (``duplicate``); posting itself is idempotent on (organization_id, event_id).

Only decisions signed with the key shared with the web app are taken (``pipeline.signing``):
an unsigned one is dead-lettered ``DECISION_UNSIGNED``, a forged one ``DECISION_FORGED``.

Decision message (JSON)::

    {"organization_id": "<uuid>", "event_id": "...", "decision": "approve" | "correct",
     "smart_code": "<required for correct>", "reviewer": "<who>", "reviewer_id": "<web user id>",
     "decision_id": "<uuid>", "signed_at": "<RFC 3339>", "signature": "hmac-sha256=<hex>"}
"""

from __future__ import annotations

from typing import Any

from pipeline.domain import strict_json
from pipeline.domain.outcomes import Outcome, Reason, Rejected
from pipeline.domain.strict_json import StrictJSONError, loads_strict
from pipeline.domain.validate import sanitise_text
from pipeline.envelopes import Record, dead_letter
from pipeline.flow import BatchResult, audit_record
from pipeline.ledger.tenancy import org_uuid
from schemas.events import EVENT_ID_LENGTH_MAX

DECISIONS = ("approve", "correct")
REVIEWER_CHARS_MAX = 200
DECISION_BYTES_MAX = 16 * 1024
DECISION_DEPTH_MAX = 8  # a decision is a flat object: anything nested deeper is hostile
_JSON_REASONS = {strict_json.TOO_DEEP: Reason.JSON_TOO_DEEP, strict_json.DUPLICATE_KEY: Reason.JSON_DUPLICATE_KEY}


def _load(raw: bytes) -> Any:
    if len(raw) > DECISION_BYTES_MAX:
        raise StrictJSONError(strict_json.NOT_JSON, f"over {DECISION_BYTES_MAX} bytes")
    return loads_strict(raw, DECISION_DEPTH_MAX)


def organization_of(raw: bytes) -> str | None:
    """The organisation a decision message names, if it is a readable one (never raises)."""
    try:
        data = _load(raw)
    except StrictJSONError:
        return None
    org = data.get("organization_id") if isinstance(data, dict) else None
    return org if isinstance(org, str) else None


def parse_decision(raw: bytes, catalog: Any, key: bytes) -> dict[str, Any] | Rejected:
    """The decision in ``raw``, or why it is refused; never raises, whatever the bytes (strict JSON:
    size- and depth-limited, no repeated keys; see ``pipeline.domain.strict_json``), and only a
    decision signed with ``key`` (``pipeline.signing``)."""
    from pipeline.signing import verify

    try:
        data = _load(raw)
    except StrictJSONError as exc:
        return Rejected(_JSON_REASONS.get(exc.kind, Reason.ENCODING_INVALID), f"decision: {exc.detail}")
    if isinstance(data, dict) and (unsigned := verify(data, key)) is not None:
        return unsigned
    if not isinstance(data, dict) or not isinstance(data.get("organization_id"), str) \
            or not isinstance(data.get("event_id"), str) or data.get("decision") not in DECISIONS:
        return Rejected(Reason.SCHEMA_INVALID, "need organization_id, event_id and decision approve|correct")
    if org_uuid(data["organization_id"]) is None or not 1 <= len(data["event_id"]) <= EVENT_ID_LENGTH_MAX:
        return Rejected(Reason.SCHEMA_INVALID, "organization_id must be a UUID and event_id 1-128 characters")
    if data["decision"] == "correct" and not catalog.is_known(str(data.get("smart_code"))):
        return Rejected(Reason.SMART_CODE_INVALID, "a correction needs a smart code of the catalog")
    reviewer = sanitise_text(str(data.get("reviewer") or "reviewer"))[:REVIEWER_CHARS_MAX] or "reviewer"
    return {**data, "reviewer": reviewer}


async def apply_decisions(records: list[Record], *, store: Any, catalog: Any, memory: Any, decision_key: bytes,
                          stage: str = "review") -> tuple[BatchResult, set[str]]:
    """Post and learn from a batch of decisions signed with ``decision_key``; returns the result and the
    organisations taught."""
    from pipeline.domain.posting import build_entry
    from pipeline.envelopes import posted_message
    from schemas.events import RawTransactionV1

    result = BatchResult()
    pending: list[tuple[dict[str, Any], dict[str, Any], Any, Any]] = []
    for rec in records:
        parsed = parse_decision(rec.value, catalog, decision_key)
        item = None if isinstance(parsed, Rejected) else await store.get_review(parsed["organization_id"],
                                                                                 parsed["event_id"])
        if isinstance(parsed, Rejected) or item is None:
            why = parsed if isinstance(parsed, Rejected) else Rejected(Reason.REVIEW_UNKNOWN, "no such review item")
            result.emits.append(dead_letter(rec.value, why.reason, why.detail, stage=stage, topic=rec.topic,
                                            partition=rec.partition, offset=rec.offset, key=rec.key))
            result.count(Outcome.REJECTED, why.reason)
            continue
        org, event_id = parsed["organization_id"], parsed["event_id"]
        if item["status"] != "open":
            result.count(Outcome.DUPLICATE)
            continue
        event_json = item["payload"]["event"]
        if item.get("erased"):   # its subject was erased (SECURITY.md §7): post without a counterparty
            event_json = {k: v for k, v in event_json.items() if k != "counterparty"}
        event = RawTransactionV1.model_validate(event_json)
        code = parsed["smart_code"] if parsed["decision"] == "correct" else item["suggested_smart_code"]
        built = build_entry(event, code, catalog, created_by=parsed["reviewer"])
        if isinstance(built, Rejected):
            result.emits.append(dead_letter(rec.value, built.reason, built.detail, stage=stage, topic=rec.topic,
                                            partition=rec.partition, offset=rec.offset, key=rec.key))
            result.count(Outcome.REJECTED, built.reason)
            result.audit.append(audit_record(stage, org, event_id, "rejected", reason=str(built.reason)))
            continue
        pending.append((parsed, item, event, built))
    taught: set[str] = set()
    posted = await store.post_batch([p[3] for p in pending]) if pending else []
    for (parsed, item, event, entry), res in zip(pending, posted, strict=True):
        org, event_id = parsed["organization_id"], parsed["event_id"]
        corrected = parsed["decision"] == "correct" and entry.smart_code != item["suggested_smart_code"]
        if res.outcome not in (Outcome.POSTED, Outcome.DUPLICATE):
            reason = res.reason or Reason.POISON
            result.count(Outcome.REJECTED, reason)
            result.audit.append(audit_record(stage, org, event_id, "rejected", reason=str(reason)))
            continue
        await store.resolve_review(org, event_id, status="corrected" if corrected else "approved",
                                   smart_code=entry.smart_code, actor=parsed["reviewer"])
        memory.learn(org, event, entry.smart_code, corrected=corrected)
        taught.add(org)
        result.count(Outcome.POSTED if res.outcome == Outcome.POSTED else Outcome.DUPLICATE)
        result.audit.append(audit_record(stage, org, event_id, "corrected" if corrected else "approved",
                                         smart_code=entry.smart_code, reviewer=parsed["reviewer"]))
        if res.outcome == Outcome.POSTED:
            result.emits.append(posted_message(
                entry, res.entry_id, source=item["payload"].get("source"),
                classification={"smart_code": entry.smart_code, "confidence": 1.0, "method": "review"}))
    return result, taught
