"""The pipeline's stages as batch functions: records in, messages out. No Kafka in here.

Each Faust agent (``agents/``) is a thin loop around one of these: take a batch of records,
call the stage, produce what it returns, then let Faust ack. A stage never raises for bad input:
every record ends in exactly one outcome (forwarded, review, dead-lettered, duplicate, deferred).

    validate_batch   raw bytes      -> validated envelope | dead letter (one reason code)
    classify_batch   validated      -> classified (auto-post) | review item | dead letter
    post_batch       classified     -> posted entries (one DB transaction per batch) | duplicates

The worker runs classify and post in one agent (``agents.stages``): a batch's auto-post entries go
to the ledger as built, without a round trip through the broker; the classified topic is still
published, as the record of every classification decision for downstream readers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any, NamedTuple

from pipeline.domain.outcomes import Outcome, Reason, Rejected
from pipeline.domain.outliers import outlier_for
from pipeline.domain.posting import build_entry
from pipeline.envelopes import (
    ClassifiedEnvelope,
    Emit,
    Origin,
    Record,
    ValidatedEnvelope,
    dead_letter,
    dead_letter_from_envelope,
    dumps,
    entry_to_json,
)
from pipeline.observability.metrics import observe_committed

AUTO_POST_THRESHOLD_FLOOR = 0.85  # HERA's own floor (docs/decisions.md); calibration may only raise it


@dataclass
class BatchResult:
    """A batch's outputs: messages to produce, counts, audit records, table changelog records."""

    emits: list[Emit] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    audit: list[dict[str, Any]] = field(default_factory=list)
    changelog: list[Any] = field(default_factory=list)  # table changelog records to produce with the batch

    def merge(self, other: BatchResult) -> BatchResult:
        self.emits += other.emits
        self.outcomes.update(other.outcomes)
        self.reasons.update(other.reasons)
        self.audit += other.audit
        self.changelog += other.changelog
        return self

    def count(self, outcome: Outcome | str, reason: Reason | str | None = None) -> None:
        self.outcomes[str(outcome)] += 1
        if reason is not None:
            self.reasons[str(reason)] += 1


InlineItem = tuple[ValidatedEnvelope, int, Any]  # (validated envelope, partition, parsed event or None)
PostItem = tuple[ClassifiedEnvelope, Any]  # (classified envelope, JournalEntry)


@dataclass
class Work:
    """What a stage hands back to its agent, to do before the batch's outputs are released."""

    inline: list[InlineItem] = field(default_factory=list)  # to admit, classify and post in this batch
    reviews: list[ClassifiedEnvelope] = field(default_factory=list)  # to store in the ledger's review queue
    to_post: list[PostItem] = field(default_factory=list)  # to post to the ledger

    def merge(self, other: Work) -> Work:
        self.inline += other.inline
        self.reviews += other.reviews
        self.to_post += other.to_post
        return self


@dataclass
class Staged:
    """A step's result: its outputs and the work it hands back."""

    out: BatchResult = field(default_factory=BatchResult)
    work: Work = field(default_factory=Work)

    def merge(self, other: Staged) -> Staged:
        self.out.merge(other.out)
        self.work.merge(other.work)
        return self


def audit_record(stage: str, org: str | None, event_id: str | None, outcome: str, *,
                 reason: str | None = None, correlation_id: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"stage": stage, "organization_id": org, "event_id": event_id, "outcome": outcome,
            "reason": reason, "correlation_id": correlation_id or event_id, **extra}


# ---------------------------------------------------------------- validate

def validate_batch(records: list[Record], *, known_orgs: set[str] | None, payload_bytes_max: int,
                   stage: str = "validate", inline: Callable[[Record, str], bool] | None = None,
                   window: Any = None) -> tuple[BatchResult, Work, set[str]]:
    """Validate and sanitise raw records. ``known_orgs=None`` means auto-provision every org.

    A valid event becomes a validated envelope: published to the validated topic, keyed by its
    organisation, or — when ``inline(record, org)`` says the record already sits on its
    organisation's partition — kept in ``work.inline`` for the caller to process on the spot.

    Returns the outputs, the work and the set of organisation ids seen that are not in ``known_orgs``
    (the caller provisions them when auto-provisioning is on).
    """
    from pipeline.domain.validate import DEFAULT_WINDOW, Rejected, validate_many

    result, work = BatchResult(), Work()
    new_orgs: set[str] = set()
    outcomes = result.outcomes   # result.count("validated"), once per event, without the call
    validated = validate_many([rec.value for rec in records], payload_bytes_max=payload_bytes_max,
                              window=window or DEFAULT_WINDOW)
    for rec, checked in zip(records, validated, strict=True):
        if isinstance(checked, Rejected):
            result.emits.append(dead_letter(rec.value, checked.reason, checked.detail, stage=stage,
                                            topic=rec.topic, partition=rec.partition, offset=rec.offset,
                                            key=rec.key))
            result.count(Outcome.REJECTED, checked.reason)
            result.audit.append(audit_record(stage, None, None, "rejected", reason=str(checked.reason),
                                             source=f"{rec.topic}/{rec.partition}/{rec.offset}"))
            continue
        event = checked.event
        org = str(event.organization_id)
        if known_orgs is not None and org not in known_orgs:
            result.emits.append(dead_letter(rec.value, Reason.ORG_UNKNOWN, f"organization {org} is not registered",
                                            stage=stage, topic=rec.topic, partition=rec.partition,
                                            offset=rec.offset, key=rec.key))
            result.count(Outcome.REJECTED, Reason.ORG_UNKNOWN)
            result.audit.append(audit_record(stage, org, event.event_id, "rejected", reason="ORG_UNKNOWN"))
            continue
        new_orgs.add(org)
        # the event is ``event.model_dump(mode="json", exclude_none=True)``, dumped once by validation
        envelope = ValidatedEnvelope(checked.body, checked.fingerprint, Origin(rec.topic, rec.partition, rec.offset),
                                     raw_timestamp_ms=rec.timestamp_ms)
        if inline is not None and inline(rec, org):
            work.inline.append((envelope, rec.partition, event))
        else:
            result.emits.append(Emit("validated", org.encode(), dumps(envelope.to_json())))
        outcomes["validated"] += 1
    return result, work, new_orgs


# ---------------------------------------------------------------- classify + decide + build entry

@dataclass
class ClassifyContext:
    """What the classify stage needs: the model, the catalog, per-org learned memory and overrides."""

    classifier: Any
    catalog: Any
    memory: Any = None
    org_catalogs: dict[str, Any] = field(default_factory=dict)
    # (org, smart code) -> domain.outliers.AmountHistory, from ledger.history.amount_histories
    histories: dict[tuple[str, str], Any] = field(default_factory=dict)

    def catalog_for(self, org: str) -> Any:
        return self.org_catalogs.get(org, self.catalog)


class Decision(NamedTuple):
    """What happens to one classified event: posted, sent to review (with a suggested entry when one
    can be built), or rejected with a reason. A named tuple: one is made per event, and a frozen
    dataclass costs several times more to make."""

    outcome: Outcome
    reason: Reason | None
    entry: Any  # JournalEntry | None
    detail: str = ""


def calibrated_catalog(classifier: Any, catalog: Any = None) -> Any:
    """The standard catalog with the auto-post thresholds calibrated on held-out data (docs/decisions.md:
    0.85 is a floor, the target is >= 98 % correct among auto-posted). Suspense keeps none."""
    from pipeline.domain.catalog import load_catalog

    catalog = catalog or load_catalog()
    thresholds = {code: f"{max(t, AUTO_POST_THRESHOLD_FLOOR):.4f}" for code, t in classifier.thresholds.items()
                  if code in catalog.smart_codes and catalog.smart_codes[code].auto_post_threshold is not None}
    return catalog.with_overrides(thresholds=thresholds)


def review_reason(code: str | None) -> Reason | None:
    """A classifier's review reason as a stable Reason (unknown strings mean an incomplete event)."""
    if not code:
        return None
    try:
        return Reason(code)
    except ValueError:
        return Reason.INCOMPLETE_EVENT


@lru_cache(maxsize=16_384)     # confidences have four decimals: a few thousand values recur
def _confidence(value: float) -> Decimal:
    return Decimal(str(value))


def decide_event(event: Any, cls: Any, catalog: Any, histories: Any = None) -> Decision:
    built = build_entry(event, cls.smart_code, catalog, line_codes=cls.line_codes)
    if isinstance(built, Rejected):
        return Decision(built.outcome, built.reason, None, built.detail)
    block = review_reason(cls.reason) or catalog.auto_post_block(
        cls.smart_code, _confidence(cls.confidence), Decimal(event.amount)) or (
        outlier_for(histories, str(event.organization_id), cls.smart_code, Decimal(event.amount))
        if histories else None)
    return Decision(Outcome.POSTED if block is None else Outcome.REVIEW, block, built)


def classify_batch(envelopes: list[ValidatedEnvelope], ctx: ClassifyContext, stage: str = "classify", *,
                   events: list[Any] | None = None) -> tuple[BatchResult, Work]:
    """Classify validated envelopes. ``events``: their parsed events where the caller still holds them
    (a None is parsed again from the envelope, as an envelope read from the validated topic is)."""
    from pipeline.classify.classifier import gc_paused

    # a batch's garbage is acyclic: the collector would only rescan the heap. It resumes once the batch's
    # temporaries (classifications, decisions) are gone, so its next pass scans only what the batch returns.
    with gc_paused():
        return _classify_and_decide(envelopes, ctx, stage, events)


def _classify_and_decide(envelopes: list[ValidatedEnvelope], ctx: ClassifyContext, stage: str,
                         events: list[Any] | None) -> tuple[BatchResult, Work]:
    from schemas.events import RawTransactionV1

    events = [event if event is not None else RawTransactionV1.model_validate(env.event)
              for env, event in zip(envelopes, events or [None] * len(envelopes), strict=True)]
    decided: dict[int, Decision] = {}

    def review_bound(i: int, cls: Any) -> bool:
        """Only a reviewer reads an explanation: the classifier builds none for the others."""
        decided[i] = decision = decide_event(events[i], cls, ctx.catalog_for(str(events[i].organization_id)),
                                             ctx.histories)
        return decision.outcome == Outcome.REVIEW

    classifications = ctx.classifier.classify_batch(events, org_memory=ctx.memory, explain=review_bound)
    result, work = BatchResult(), Work()
    for i, (env, event, cls) in enumerate(zip(envelopes, events, classifications, strict=True)):
        org = str(event.organization_id)
        decision = decided.get(i) or decide_event(event, cls, ctx.catalog_for(org), ctx.histories)
        _classified(result, work, env, event, cls, decision, org, stage)
    return result, work


def _classified(result: BatchResult, work: Work, env: ValidatedEnvelope, event: Any, cls: Any, decision: Decision,
                org: str, stage: str) -> None:
    """One classified event's outputs: dead letter, classified message and entry to post, or review item."""
    if decision.outcome == Outcome.REJECTED:
        reason = decision.reason or Reason.POISON
        result.emits.append(dead_letter_from_envelope(env, reason, decision.detail, stage=stage))
        result.count(Outcome.REJECTED, reason)
        result.audit.append(audit_record(stage, org, event.event_id, "rejected", reason=str(reason)))
        return
    classification = {"smart_code": cls.smart_code, "confidence": round(cls.confidence, 4),
                      "method": cls.method, "alternatives": cls.alternatives}   # pairs: JSON arrays
    body = entry_to_json(decision.entry) if decision.entry is not None else None
    if decision.outcome == Outcome.POSTED:
        out = ClassifiedEnvelope(env, classification, body)
        result.emits.append(Emit("classified", org.encode(), dumps(out.to_json())))
        work.to_post.append((out, decision.entry))
        result.count("classified")
    else:  # announced by ``queued_for_review`` once it is in the ledger
        # the reviewer sees why: the evidence, the memory key that fired, what capped the confidence
        work.reviews.append(ClassifiedEnvelope(env, {**classification, "explanation": cls.explanation}, body,
                                               str(decision.reason)))


def queued_for_review(items: list[ClassifiedEnvelope], stage: str = "classify") -> BatchResult:
    """The review-queue messages, counts and audit records of items now stored in the ledger's queue."""
    result = BatchResult()
    for out in items:
        cls = out.classification
        result.emits.append(Emit("review", out.org.encode(), dumps(out.to_json())))
        result.count(Outcome.REVIEW, out.review_reason)
        result.audit.append(audit_record(stage, out.org, out.event_id, "review", reason=out.review_reason,
                                         smart_code=cls["smart_code"], confidence=cls["confidence"]))
    return result


# ---------------------------------------------------------------- post

async def post_batch(classified: list[PostItem], store: Any, stage: str = "post") -> BatchResult:
    """Post a batch of classified entries, given as (classified envelope, JournalEntry) pairs, in one
    database transaction; announce what was posted."""
    from pipeline.envelopes import posted_message

    result = BatchResult()
    posted = await store.post_batch([entry for _, entry in classified])
    observe_committed(env.raw_timestamp_ms for (env, _), res in zip(classified, posted, strict=True)
                      if res.outcome == Outcome.POSTED)
    for (env, entry), res in zip(classified, posted, strict=True):
        org = entry.organization_id
        if res.outcome == Outcome.POSTED:
            result.emits.append(posted_message(entry, res.entry_id, classification=env.classification,
                                               source=env.source.to_json(), body=env.entry))
            result.count(Outcome.POSTED)
            result.audit.append(audit_record(stage, org, entry.event_id, "posted", entry_id=res.entry_id,
                                             smart_code=entry.smart_code, total=str(entry.total)))
        elif res.outcome == Outcome.DUPLICATE:
            # Already in the ledger: most likely this batch was posted and the worker died before
            # announcing it. Announce it (again): consumers deduplicate by entry_id, and an entry
            # must never be in the ledger without having been published.
            result.emits.append(posted_message(entry, res.entry_id, classification=env.classification,
                                               source=env.source.to_json(), redelivered=True, body=env.entry))
            result.count(Outcome.DUPLICATE)
            result.audit.append(audit_record(stage, org, entry.event_id, "duplicate", entry_id=res.entry_id,
                                             source=env.source.to_json()))
        else:
            reason = res.reason or Reason.POISON
            result.emits.append(dead_letter_from_envelope(env, reason, f"ledger refused: {reason}", stage=stage))
            result.count(Outcome.REJECTED, reason)
            result.audit.append(audit_record(stage, org, entry.event_id, "rejected", reason=str(reason)))
    return result
