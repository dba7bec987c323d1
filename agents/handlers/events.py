"""Validated events through admission, classification and the ledger (the raw and validated topics).

``admit_classify`` is the CPU part of a batch, run batch after batch in order (admission is stateful:
decided once per batch, never retried). Its admission outputs (table changelog records and parked
events) start producing at once, beside the ledger write: a ticket's changelog record and the parked
message carrying it reach the broker together. ``settle`` then stores the review items and posts the
entries (one database transaction each), waits for admission's outputs, and publishes the rest.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from agents.admission import Verdict, admit_new
from agents.failure import Letter, isolate
from agents.handlers import Context
from agents.profile import hop
from agents.tuning import chunks
from pipeline.domain.outcomes import Outcome, Reason
from pipeline.envelopes import (
    AnyEnvelope,
    ClassifiedEnvelope,
    Emit,
    ParkedEnvelope,
    ValidatedEnvelope,
    dead_letter_from_envelope,
    dumps,
)
from pipeline.flow import (
    BatchResult,
    InlineItem,
    PostItem,
    Staged,
    audit_record,
    classify_batch,
    post_batch,
    queued_for_review,
)
from pipeline.resilience.retry import retry_policy

Admitted = tuple[ValidatedEnvelope, Any]  # an admitted envelope and its parsed event (or None)


@dataclass
class Pending:
    """A processed batch between take and release."""

    stage: str
    staged: Staged
    early: asyncio.Future[None] | None = None  # admission's outputs, being produced


def envelope_letter(env: AnyEnvelope, step: str, exc: BaseException) -> Letter:
    from agents.failure import detail

    return (dead_letter_from_envelope(env, Reason.POISON, detail(exc), stage=step),
            audit_record(step, env.org, env.event_id, "rejected", reason="POISON", source=env.source.id))


def item_letter(item: tuple[AnyEnvelope, Any], step: str, exc: BaseException) -> Letter:
    return envelope_letter(item[0], step, exc)


def admission_outcome(out: BatchResult, env: ValidatedEnvelope, adm: Any) -> None:
    """Record a non-admit verdict: duplicate (absorbed), conflict (dead letter) or defer (parked)."""
    org, event_id = env.org, env.event_id
    if adm.verdict is Verdict.DUPLICATE:
        out.count(Outcome.DUPLICATE)
        out.audit.append(audit_record("admission", org, event_id, "duplicate", source=env.source.to_json()))
    elif adm.verdict is Verdict.CONFLICT:
        out.emits.append(dead_letter_from_envelope(env, Reason.DUPLICATE_CONFLICT,
                                                   "event_id reused with different content", stage="admission"))
        out.count(Outcome.REJECTED, Reason.DUPLICATE_CONFLICT)
        out.audit.append(audit_record("admission", org, event_id, "rejected", reason="DUPLICATE_CONFLICT"))
    else:
        parked = ParkedEnvelope(env, adm.seq, adm.not_before)
        out.emits.append(Emit("deferred", org.encode(), dumps(parked.to_json())))
        out.count(Outcome.DEFERRED)
        out.audit.append(audit_record("admission", org, event_id, "deferred", seq=adm.seq))


class Events:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        # admission outputs are produced one batch after the other, across the raw and validated agents
        # (both write the same organisations' changelog partitions): a retried batch never lands after
        # a later one, which would leave the older table value last in the changelog
        self._last_early: asyncio.Future[None] | None = None

    async def admit_classify(self, stage: str, items: list[InlineItem], staged: Staged) -> Pending:
        with hop(stage, "admit"):
            admitted, adm = await self.admit(items)
        staged.out.merge(adm)
        if admitted:
            with hop(stage, "classify"):
                for chunk in chunks(admitted):   # the event loop runs between chunks: see agents/tuning.py
                    await asyncio.sleep(0)
                    staged.merge(await isolate("classify", chunk, self.classify, item_letter))
        return self.start_early(stage, staged)

    async def admit(self, items: list[InlineItem]) -> tuple[list[Admitted], BatchResult]:
        """Dedupe and rate-limit fresh events; re-admitted ones (from the deferred topic) pass.
        Returns the admitted envelopes (with their parsed events) in their original order."""
        rt, tables = self.ctx.rt, self.ctx.tables
        fresh = [(i, item) for i, item in enumerate(items) if not item[0].admitted]
        keep = {i for i, (env, _, _) in enumerate(items) if env.admitted}
        orgs = {env.org for _, (env, _, _) in fresh}
        limit_of = await retry_policy("admission").call(lambda: rt.limits(orgs))
        decisions, changelog = admit_new(tables, [(env, partition) for _, (env, partition, _) in fresh], limit_of)
        out = BatchResult(changelog=changelog)
        for (i, (env, _, _)), adm in zip(fresh, decisions.admissions, strict=True):
            if adm.verdict is Verdict.ADMIT:
                keep.add(i)
            else:
                admission_outcome(out, env, adm)
        return [(env, event) for i, (env, _, event) in enumerate(items) if i in keep], out

    async def classify(self, items: list[Admitted]) -> Staged:
        envelopes = [env for env, _ in items]
        ctx = await self.ctx.rt.classify_context({e.org for e in envelopes})
        return Staged(*classify_batch(envelopes, ctx, events=[event for _, event in items]))

    def start_early(self, stage: str, staged: Staged) -> Pending:
        """Start producing admission's outputs (changelog records, parked events) now."""
        out = staged.out
        parked = [e for e in out.emits if e.topic_key == "deferred"]
        if not (parked or out.changelog):
            return Pending(stage, staged)
        out.emits = [e for e in out.emits if e.topic_key != "deferred"]
        early = BatchResult(emits=parked, changelog=out.changelog)
        out.changelog = []
        future = asyncio.ensure_future(self._publish_early(self._last_early, stage, early))
        self._last_early = future
        return Pending(stage, staged, future)

    async def _publish_early(self, previous: asyncio.Future[None] | None, stage: str, early: BatchResult) -> None:
        if previous is not None:
            await asyncio.shield(previous)  # its failure fails this batch too (its settle raises it)
        await retry_policy(stage).call(lambda: self.ctx.publisher.publish(stage, early))

    async def write(self, pending: Pending) -> None:
        """Review items and entries durable (may overlap an earlier batch's: see agents/runner.py)."""
        try:
            with hop(pending.stage, "ledger"):
                await self.write_ledger(pending.staged)
        except BaseException:
            if pending.early is not None:
                await asyncio.gather(pending.early, return_exceptions=True)  # never left running unobserved
            raise

    async def settle(self, pending: Pending) -> None:
        """Once written and every earlier batch of its partitions released: admission's outputs
        acknowledged, then the rest produced."""
        if pending.early is not None:
            with hop(pending.stage, "admission_publish"):
                await pending.early
        out = pending.staged.out
        with hop(pending.stage, "publish"):
            await retry_policy(pending.stage).call(lambda: self.ctx.publisher.publish(pending.stage, out))

    async def write_ledger(self, staged: Staged) -> None:
        work = staged.work
        reviews, work.reviews = work.reviews, []
        to_post, work.to_post = work.to_post, []
        # two transactions on two pooled connections at once: review items and entries are
        # independent rows, and both are durable before anything of the batch is published
        steps = []
        if reviews:
            steps.append(isolate("review-queue", reviews, self.queue_reviews, envelope_letter))
        if to_post:
            steps.append(isolate("post", to_post, self.post_entries, item_letter))
        for done in await asyncio.gather(*steps):
            staged.merge(done)

    async def queue_reviews(self, items: list[ClassifiedEnvelope]) -> Staged:
        store = await self.ctx.rt.store()
        await store.add_reviews([
            {"org_id": item.org, "event_id": item.event_id, "payload": item.to_json(),
             "suggested_smart_code": item.classification["smart_code"],
             "confidence": item.classification["confidence"], "reason": item.review_reason}
            for item in items])
        return Staged(queued_for_review(items))

    async def post_entries(self, items: list[PostItem]) -> Staged:
        return Staged(await post_batch(items, await self.ctx.rt.store()))
