"""The agents, thin loops around ``pipeline.flow``:

* ``hera.validate`` (raw topic): validate; an event already on its organisation's partition goes on
  through admission, classification and posting in the same batch, the others are re-keyed to
* ``hera.classify`` (validated topic): admission, classification and posting;
* ``hera.deferred``, ``hera.review`` (decisions) and ``hera.audit``.

A batch has two phases: everything up to the decisions, then the ledger writes (review items,
entries). The writes of batch N overlap the first phase of batch N+1; phases run in batch order,
so messages are produced and offsets released in the order the records came.

Failure policy (Faust acks whatever its agent was handed, even when the body raises, so the body
must never raise):
* transient faults (database or broker unreachable, serialization failures): retry the same batch
  with capped backoff, forever — nothing is acked until it is durably handled;
* anything else: the batch is split and each record retried up to ``POISON_ATTEMPTS_MAX`` times;
  a record that still fails is dead-lettered with reason ``POISON`` and the partition moves on.
Produced messages are awaited (broker-acknowledged) before the batch is released to be acked.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import faust
import orjson

from agents.admission import Verdict, admit_new, admit_parked, create_tables
from agents.outbox import Message, keyed_partition, partition_count, produce_all
from agents.runtime import Runtime, is_transient
from pipeline.config import Settings
from pipeline.domain.outcomes import Outcome, Reason
from pipeline.domain.strict_json import loads_strict
from pipeline.envelopes import Emit, Record, dead_letter, dead_letter_from_envelope, dumps, source_id
from pipeline.flow import (
    BatchResult,
    audit_record,
    classify_batch,
    post_batch,
    queued_for_review,
    validate_batch,
)
from pipeline.observability import metrics

log = logging.getLogger("hera.agents")

POISON_ATTEMPTS_MAX = 3
BACKOFF_SECONDS_MAX = 5.0

T = TypeVar("T")
StageFn = Callable[[list[Record]], Awaitable[BatchResult]]
PoisonFn = Callable[[T, str, BaseException], tuple[Emit, dict[str, Any]]]
FinishFn = Callable[[BatchResult], Awaitable[BatchResult]]
# a validated envelope, the partition its state lives on, and its parsed event when still at hand
Validated = tuple[dict[str, Any], int, Any]
Admitted = tuple[dict[str, Any], Any]  # an admitted envelope and its parsed event (or None)
DEFER_SLEEP_SECONDS_MAX = 2.0


def to_record(event: faust.EventT) -> Record:
    msg = event.message
    return Record(topic=msg.topic, partition=msg.partition, offset=msg.offset, key=msg.key,
                  value=msg.value, timestamp_ms=int(msg.timestamp * 1000) if msg.timestamp else None)


def poison_letter(rec: Record, stage: str, exc: BaseException) -> tuple[Emit, dict[str, Any]]:
    """Dead-letter a record that failed repeatedly, with its original bytes when we carry them."""
    detail = f"{type(exc).__name__}: {exc}"
    source = f"{rec.topic}/{rec.partition}/{rec.offset}"
    with contextlib.suppress(ValueError, KeyError, TypeError, binascii.Error):
        env = json.loads(rec.value)
        if isinstance(env, dict) and "raw_b64" in env:
            return envelope_poison_letter(env, stage, exc)
    return (dead_letter(rec.value, Reason.POISON, detail, stage=stage, topic=rec.topic, partition=rec.partition,
                        offset=rec.offset, key=rec.key),
            audit_record(stage, None, None, "rejected", reason="POISON", source=source))


def item_poison_letter(item: tuple[dict[str, Any], Any], stage: str, exc: BaseException
                       ) -> tuple[Emit, dict[str, Any]]:
    """An (envelope, anything) item's POISON letter: the envelope's."""
    return envelope_poison_letter(item[0], stage, exc)


def envelope_poison_letter(env: dict[str, Any], stage: str, exc: BaseException) -> tuple[Emit, dict[str, Any]]:
    return (dead_letter_from_envelope(env, Reason.POISON, f"{type(exc).__name__}: {exc}", stage=stage),
            audit_record(stage, env["event"]["organization_id"], env["event"]["event_id"], "rejected",
                         reason="POISON", source=source_id(env)))


def add_poison(result: BatchResult, letter: Emit, audit: dict[str, Any]) -> None:
    """Record one record's POISON outcome: its dead letter, its count and its audit record."""
    result.emits.append(letter)
    result.count("rejected", Reason.POISON)
    result.audit.append(audit)


async def process_safely(stage: str, items: list[T], fn: Callable[[list[T]], Awaitable[BatchResult]],
                         poison: PoisonFn[T] = poison_letter) -> BatchResult:  # type: ignore[assignment]
    backoff = 0.1
    while True:
        try:
            return await fn(items)
        except Exception as exc:
            if is_transient(exc):
                metrics.RETRIES.labels(stage, "transient").inc()
                log.warning("%s: transient fault, retrying batch of %d in %.1fs: %r", stage, len(items),
                            backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_SECONDS_MAX)
                continue
            log.exception("%s: batch of %d failed; retrying one by one", stage, len(items))
            break
    merged = BatchResult()
    for item in items:
        failures = 0
        while True:  # a transient fault never counts as an attempt: only this item's own failures do
            try:
                merged.merge(await fn([item]))
                break
            except Exception as exc:
                if is_transient(exc):
                    await asyncio.sleep(backoff)
                    continue
                failures += 1
                metrics.RETRIES.labels(stage, "poison").inc()
                if failures == POISON_ATTEMPTS_MAX:
                    metrics.POISON.labels(stage).inc()
                    add_poison(merged, *poison(item, stage, exc))
                    break
    return merged


def org_partition(org: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a message keyed by ``org`` (murmur2)."""
    return keyed_partition(org.encode(), partitions)


async def publish(app: faust.App, settings: Settings, stage: str, result: BatchResult) -> None:
    """Produce every emit and the batch's audit records, and wait until the broker has them all."""
    messages = [Message(w.topic, w.partition, w.key, w.value) for w in result.changelog]
    messages += [Message(settings.topic(emit.topic_key), None, emit.key, emit.value, emit.headers or None)
                 for emit in result.emits]
    # one audit message per partition, holding the records of every organisation that partition
    # carries: the records of an organisation land where a message keyed by it would (so they stay in
    # order), in a handful of messages per batch instead of one per organisation
    producer, audit_topic = app.producer._ensure_producer(), settings.topic("audit")
    if result.audit:
        partitions = await partition_count(producer, audit_topic)
        by_partition: dict[int, list[dict[str, Any]]] = defaultdict(list)
        now = time.time()
        for rec in result.audit:
            by_partition[org_partition(rec.get("organization_id") or "-", partitions)].append(
                {**rec, "at": now, "stage": rec.get("stage", stage)})
        messages += [Message(audit_topic, partition, None, dumps({"records": recs}))
                     for partition, recs in by_partition.items()]
    await produce_all(producer, messages)
    for outcome, n in result.outcomes.items():
        metrics.EVENTS.labels(stage, outcome).inc(n)
    for reason, n in result.reasons.items():
        metrics.REJECTIONS.labels(stage, reason).inc(n)


async def retry_transient(stage: str, fn: Callable[[], Awaitable[Any]]) -> Any:
    backoff = 0.1
    while True:
        try:
            return await fn()
        except Exception as exc:
            if not is_transient(exc):
                raise
            metrics.RETRIES.labels(stage, "transient").inc()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_SECONDS_MAX)


def admission_outcome(result: BatchResult, env: dict[str, Any], adm: Any) -> None:
    """Record a non-admit verdict: duplicate (absorbed), conflict (dead letter) or defer (parked)."""
    org, event_id = env["event"]["organization_id"], env["event"]["event_id"]
    if adm.verdict is Verdict.DUPLICATE:
        result.count(Outcome.DUPLICATE)
        result.audit.append(audit_record("admission", org, event_id, "duplicate", source=env["source"]))
    elif adm.verdict is Verdict.CONFLICT:
        result.emits.append(dead_letter_from_envelope(env, Reason.DUPLICATE_CONFLICT,
                                                      "event_id reused with different content", stage="admission"))
        result.count(Outcome.REJECTED, Reason.DUPLICATE_CONFLICT)
        result.audit.append(audit_record("admission", org, event_id, "rejected", reason="DUPLICATE_CONFLICT"))
    else:
        parked = {**env, "parked": {"seq": adm.seq, "not_before": adm.not_before}}
        result.emits.append(Emit("deferred", org.encode(), dumps(parked)))
        result.count(Outcome.DEFERRED)
        result.audit.append(audit_record("admission", org, event_id, "deferred", seq=adm.seq))


def audit_records(recs: list[dict[str, Any]]) -> list[Any]:
    """Audit-topic records as ledger audit rows. Posted entries are chained by the store in the
    posting transaction itself; records without an organisation (unparseable input) stay on the
    audit topic and in the dead-letter topic, as there is no tenant chain to put them in."""
    from datetime import UTC, datetime

    from pipeline.ledger.audit import AuditRecord

    rows = []
    for r in recs:
        org = r.get("organization_id")
        if not org or r.get("outcome") == "posted" or r.get("reason") == "ORG_UNKNOWN":
            continue
        key = f"{r['stage']}:{r.get('event_id')}:{r['outcome']}"
        rows.append(AuditRecord(organization_id=org, action=f"event.{r['outcome']}", actor="hera-stream",
                                occurred_at=datetime.fromtimestamp(r["at"], UTC), subject=r.get("event_id"),
                                payload={k: v for k, v in r.items() if k not in {"at", "organization_id"}},
                                record_key=key))
    return rows


def register(app: faust.App, settings: Settings) -> Runtime:
    rt = Runtime(settings)
    rt.catalog()  # load the model and the calibrated catalog now, not inside the first batch
    tables = create_tables(app, settings.partitions)
    topics = {key: app.topic(settings.topic(key), key_type=bytes, value_type=bytes)
              for key in ("raw", "validated", "decisions", "audit", "deferred")}

    def stage_agent(stage: str, source: str, body: StageFn, finish: FinishFn | None = None) -> None:
        """One agent: batches from ``source`` through ``body``; with ``finish``, a second phase
        (the ledger writes) that runs while the next batch goes through ``body``. Phases run in batch
        order, so outputs are produced and offsets released in the order the records came."""

        async def settle(previous: asyncio.Future[None] | None, events: list[Any], result: BatchResult,
                         started: float) -> None:
            if previous is not None:
                await previous
            try:
                if finish is not None:
                    result = await finish(result)
                # a broker outage outlasting the client's own retries is waited out, not a crash that
                # would strand the batch unacked; a retry may produce some messages twice (consumers
                # deduplicate posted entries by entry_id; the ledger is idempotent)
                await retry_transient(stage, lambda: publish(app, settings, stage, result))
            except Exception:
                # a bug, not bad input (that was handled per record): said now, in the worker's log,
                # not when the next batch comes (which may be never); the records stay unacked
                log.exception("%s: batch of %d not written or not published", stage, len(events))
                raise
            metrics.BATCH_SECONDS.labels(stage).observe(time.perf_counter() - started)
            metrics.BATCH_SIZE.labels(stage).observe(len(events))
            metrics.LAG.labels(stage).set_to_current_time()
            # handled and published: release our reference. ``Event.ack`` (not a bare decref) so
            # that whichever of this and take_events' own ack comes last marks the offset as done:
            # take_events acks when the next batch is pulled, which in two phases is before this
            for event in events:
                event.ack()

        async def publish_admission(result: BatchResult) -> None:
            """Admission's table changelog records and the parked events are produced as soon as
            admission has decided, not after the ledger writes: a ticket's changelog record and the
            message carrying it reach the broker together (were one lost in a crash, the
            organisation's queue would wait for a ticket nobody holds)."""
            parked = [e for e in result.emits if e.topic_key == "deferred"]
            if parked or result.changelog:
                result.emits = [e for e in result.emits if e.topic_key != "deferred"]
                early = BatchResult(emits=parked, changelog=result.changelog)
                result.changelog = []
                await retry_transient(stage, lambda: publish(app, settings, stage, early))

        async def agent(stream: faust.StreamT) -> None:
            pending: asyncio.Future[None] | None = None
            try:
                async for events in stream.take_events(settings.batch_size_max,
                                                       within=settings.batch_within_seconds):
                    log.debug("%s: batch of %d", stage, len(events))
                    # Hold one reference per message until the batch is published: when the worker
                    # stops (SIGTERM) Faust cancels this body mid-batch and ``take_events`` acks the
                    # whole batch on its way out, so the consumer would commit offsets of records
                    # never handled. With the extra reference that ack is not the last one; the
                    # records stay uncommitted and are redelivered to the partition's next owner.
                    for event in events:
                        event.message.incref()
                    started = time.perf_counter()
                    result = await body([to_record(e) for e in events])
                    await publish_admission(result)
                    if finish is None:
                        await settle(None, events, result, started)
                        continue
                    # at most two batches in flight: this one's first phase ran while the previous
                    # one was being written; wait for that write before starting this one's
                    previous, pending = pending, asyncio.ensure_future(settle(pending, events, result, started))
                    if previous is not None:
                        await previous
            finally:
                if pending is not None and not pending.done():
                    pending.cancel()  # not published: its records stay unacked and are redelivered

        agent.__name__ = f"{stage}_agent"
        app.agent(topics[source], name=f"hera.{stage}", concurrency=1)(agent)

    def on_its_partition(rec: Record, org: str) -> bool:
        """True when a raw record already sits on the partition its organisation's admission state
        lives on (the producer keyed it by organisation with Kafka's default partitioner): then it is
        admitted, classified and posted right here instead of taking a second hop through the
        validated topic — the repartition is skipped, as Kafka Streams does for unchanged keys."""
        return rec.partition == org_partition(org, settings.partitions)

    async def do_validate(records: list[Record]) -> BatchResult:
        known = await rt.known_orgs()
        result, seen = validate_batch(records, known_orgs=None if settings.auto_provision_orgs else known,
                                      payload_bytes_max=settings.payload_bytes_max, inline=on_its_partition,
                                      window=settings.occurred_at_window())
        await rt.provision(seen - known)
        return result

    async def raw_batch(records: list[Record]) -> BatchResult:
        """Validate; what sits on its organisation's partition goes on through admission,
        classification and posting in this same batch; the rest is re-keyed to the validated topic."""
        result = await process_safely("validate", records, do_validate)
        inline, result.inline = result.inline, []
        return result.merge(await admit_classify(inline)) if inline else result

    async def validated_batch(records: list[Record]) -> BatchResult:
        result, items = BatchResult(), []
        for rec in records:
            try:
                items.append((orjson.loads(rec.value), rec.partition, None))
            except ValueError as exc:  # not ours: nothing else can be done with it
                add_poison(result, *poison_letter(rec, "classify", exc))
        return result.merge(await admit_classify(items)) if items else result

    async def admit_classify(items: list[Validated]) -> BatchResult:
        """Admission (stateful: decided once per batch, never retried), then classification; what
        it decided is written to the ledger by ``write_ledger`` (the batch's second phase)."""
        admitted, result = await admit(items)
        if admitted:
            result.merge(await process_safely("classify", admitted, classify, item_poison_letter))
        return result

    async def classify(items: list[Admitted]) -> BatchResult:
        envelopes = [env for env, _ in items]
        return classify_batch(envelopes, await rt.classify_context({e["event"]["organization_id"]
                                                                    for e in envelopes}),
                              events=[event for _, event in items])

    async def write_ledger(result: BatchResult) -> BatchResult:
        """The review items, then the auto-post entries in one transaction, durable before the batch
        is published and acked; an item the ledger refuses for good is dead-lettered as POISON."""
        reviews, result.reviews = result.reviews, []
        to_post, result.to_post = result.to_post, []
        if reviews:
            result.merge(await process_safely("review-queue", reviews, queue_reviews, envelope_poison_letter))
        if to_post:
            result.merge(await process_safely("post", to_post, post_entries, item_poison_letter))
        return result

    async def queue_reviews(items: list[dict[str, Any]]) -> BatchResult:
        store = await rt.store()
        await store.add_reviews([
            {"org_id": item["event"]["organization_id"], "event_id": item["event"]["event_id"], "payload": item,
             "suggested_smart_code": item["classification"]["smart_code"],
             "confidence": item["classification"]["confidence"], "reason": item["review_reason"]}
            for item in items])
        return queued_for_review(items)

    async def post_entries(items: list[tuple[dict[str, Any], Any]]) -> BatchResult:
        return await post_batch(items, await rt.store())

    async def admit(items: list[Validated]) -> tuple[list[Admitted], BatchResult]:
        """Dedupe and rate-limit fresh events; re-admitted ones (from the deferred topic) pass.
        Returns the admitted envelopes (with their parsed events) in their original order."""
        fresh = [(i, item) for i, item in enumerate(items) if not item[0].get("admitted")]
        keep = {i for i, (env, _, _) in enumerate(items) if env.get("admitted")}
        limit_of = await retry_transient("admission", lambda: rt.limits({env["event"]["organization_id"]
                                                                         for _, (env, _, _) in fresh}))
        decisions, changelog = admit_new(tables, [(env, partition) for _, (env, partition, _) in fresh], limit_of)
        result = BatchResult(changelog=changelog)
        for (i, (env, _, _)), adm in zip(fresh, decisions.admissions, strict=True):
            if adm.verdict is Verdict.ADMIT:
                keep.add(i)
            else:
                admission_outcome(result, env, adm)
        return [(env, event) for i, (env, _, event) in enumerate(items) if i in keep], result

    async def do_audit(records: list[Record]) -> BatchResult:
        store = await rt.store()
        await store.append_audit([a for rec in records for a in audit_records(orjson.loads(rec.value)["records"])])
        return BatchResult()

    async def do_deferred(records: list[Record]) -> BatchResult:
        """Re-admit parked events when their organisation's quota frees, in order."""
        envelopes = [orjson.loads(r.value) for r in records]
        wait = min(env["parked"]["not_before"] for env in envelopes) - time.time()
        if wait > 0:
            await asyncio.sleep(min(wait, DEFER_SLEEP_SECONDS_MAX))
        limit_of = await rt.limits({e["event"]["organization_id"] for e in envelopes})
        decisions, changelog = admit_parked(tables, [(env, r.partition)
                                                     for env, r in zip(envelopes, records, strict=True)], limit_of)
        result = BatchResult(changelog=changelog)
        for env, adm in zip(envelopes, decisions.admissions, strict=True):
            org = env["event"]["organization_id"]
            if adm.verdict is Verdict.ADMIT:
                back = {k: v for k, v in env.items() if k != "parked"}
                result.emits.append(Emit("validated", org.encode(), dumps({**back, "admitted": True})))
                result.count("readmitted")
            elif adm.verdict is Verdict.DEFER:
                env["parked"] = {"seq": adm.seq, "not_before": adm.not_before}
                result.emits.append(Emit("deferred", org.encode(), dumps(env)))
            else:
                admission_outcome(result, env, adm)
        return result

    async def do_review(records: list[Record]) -> BatchResult:
        from pipeline.review import apply_decisions

        store = await rt.store()
        orgs = set()
        for r in records:
            with contextlib.suppress(ValueError, AttributeError, TypeError, KeyError):
                orgs.add(str(loads_strict(r.value)["organization_id"]))   # never RecursionError
        memory = await rt.memory(orgs & await rt.known_orgs())
        result, taught = await apply_decisions(records, store=store, catalog=rt.catalog(), memory=memory)
        await rt.save_memory(taught)
        return result

    def safely(stage: str, fn: StageFn) -> StageFn:
        return lambda records: process_safely(stage, records, fn)

    stage_agent("validate", "raw", raw_batch, write_ledger)
    stage_agent("classify", "validated", validated_batch, write_ledger)
    stage_agent("deferred", "deferred", safely("deferred", do_deferred))
    stage_agent("review", "decisions", safely("review", do_review))
    stage_agent("audit", "audit", safely("audit", do_audit))

    @app.on_before_shutdown.connect  # type: ignore[untyped-decorator]
    async def _close(app: faust.App, **_: Any) -> None:
        await rt.close()

    return rt
