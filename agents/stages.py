"""The agents: one thin loop per stage around ``pipeline.flow``.

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
from typing import Any

import faust

from agents.admission import Verdict, admit_new, admit_parked, create_tables
from agents.runtime import Runtime, is_transient
from pipeline.config import Settings
from pipeline.domain.outcomes import Outcome, Reason
from pipeline.envelopes import Emit, Record, dead_letter, dead_letter_from_envelope, dumps
from pipeline.flow import BatchResult, audit_record, classify_batch, post_batch, validate_batch
from pipeline.observability import metrics

log = logging.getLogger("hera.agents")

POISON_ATTEMPTS_MAX = 3
BACKOFF_SECONDS_MAX = 5.0

StageFn = Callable[[list[Record]], Awaitable[BatchResult]]
GateFn = Callable[[list[Record]], Awaitable[tuple[list[Record], BatchResult]]]
DEFER_SLEEP_SECONDS_MAX = 2.0


def to_record(event: faust.EventT) -> Record:
    msg = event.message
    return Record(topic=msg.topic, partition=msg.partition, offset=msg.offset, key=msg.key,
                  value=msg.value, timestamp_ms=int(msg.timestamp * 1000) if msg.timestamp else None)


def poison_letter(rec: Record, stage: str, exc: BaseException) -> Emit:
    """Dead-letter a record that failed repeatedly, with its original bytes when we carry them."""
    detail = f"{type(exc).__name__}: {exc}"
    with contextlib.suppress(ValueError, KeyError, TypeError, binascii.Error):
        env = json.loads(rec.value)
        if isinstance(env, dict) and "raw_b64" in env:
            return dead_letter_from_envelope(env, Reason.POISON, detail, stage=stage)
    return dead_letter(rec.value, Reason.POISON, detail, stage=stage, topic=rec.topic, partition=rec.partition,
                       offset=rec.offset, key=rec.key)


async def process_safely(stage: str, records: list[Record], fn: StageFn) -> BatchResult:
    backoff = 0.1
    while True:
        try:
            return await fn(records)
        except Exception as exc:
            if is_transient(exc):
                metrics.RETRIES.labels(stage, "transient").inc()
                log.warning("%s: transient fault, retrying batch of %d in %.1fs: %r", stage, len(records),
                            backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_SECONDS_MAX)
                continue
            log.exception("%s: batch of %d failed; retrying record by record", stage, len(records))
            break
    merged = BatchResult()
    for rec in records:
        failures = 0
        while True:  # a transient fault never counts as an attempt: only this record's own failures do
            try:
                merged.merge(await fn([rec]))
                break
            except Exception as exc:
                if is_transient(exc):
                    await asyncio.sleep(backoff)
                    continue
                failures += 1
                metrics.RETRIES.labels(stage, "poison").inc()
                if failures == POISON_ATTEMPTS_MAX:
                    metrics.POISON.labels(stage).inc()
                    merged.emits.append(poison_letter(rec, stage, exc))
                    merged.count("rejected", Reason.POISON)
                    merged.audit.append(audit_record(stage, None, None, "rejected", reason="POISON",
                                                     source=f"{rec.topic}/{rec.partition}/{rec.offset}"))
                    break
    return merged


async def publish(app: faust.App, settings: Settings, stage: str, result: BatchResult) -> None:
    """Produce every emit and the batch's audit records, and wait until the broker has them all."""
    futures = []
    for emit in result.emits:
        futures.append(await app.producer.send(settings.topic(emit.topic_key), emit.key, emit.value, None,
                                               None, list(emit.headers) or None))
    by_org: dict[str, list[dict[str, Any]]] = defaultdict(list)
    now = time.time()
    for rec in result.audit:
        by_org[rec.get("organization_id") or "-"].append({**rec, "at": now, "stage": rec.get("stage", stage)})
    for org, recs in by_org.items():
        futures.append(await app.producer.send(settings.topic("audit"), org.encode(),
                                               dumps({"records": recs}), None, None, None))
    if futures:
        await asyncio.gather(*futures)
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
    tables = create_tables(app, settings.partitions)
    topics = {key: app.topic(settings.topic(key), key_type=bytes, value_type=bytes)
              for key in ("raw", "validated", "classified", "decisions", "audit", "deferred")}

    def stage_agent(stage: str, source: str, fn: StageFn, gate: GateFn | None = None) -> None:
        async def agent(stream: faust.StreamT) -> None:
            async for events in stream.take_events(settings.batch_size_max, within=settings.batch_within_seconds):
                log.debug("%s: batch of %d", stage, len(events))
                # Hold one reference per message until the batch is published: when the worker
                # stops (SIGTERM) Faust cancels this body mid-batch and ``take_events`` acks the
                # whole batch on its way out, so the consumer would commit offsets of records never
                # handled. With the extra reference that ack is not the last one; the records stay
                # uncommitted and are redelivered to the partition's next owner.
                for event in events:
                    event.message.incref()
                started = time.perf_counter()
                records = [to_record(e) for e in events]
                gated = BatchResult()
                if gate is not None:  # stateful admission: decided once per batch, never retried
                    records, gated = await gate(records)
                result = await process_safely(stage, records, fn) if records else BatchResult()
                await publish(app, settings, stage, gated.merge(result))
                metrics.BATCH_SECONDS.labels(stage).observe(time.perf_counter() - started)
                metrics.BATCH_SIZE.labels(stage).observe(len(records))
                metrics.LAG.labels(stage).set_to_current_time()
                for event in events:  # handled and published: take_events' ack is now the last one
                    event.message.decref()

        agent.__name__ = f"{stage}_agent"
        app.agent(topics[source], name=f"hera.{stage}", concurrency=1)(agent)

    async def do_validate(records: list[Record]) -> BatchResult:
        known = await rt.known_orgs()
        result, seen = validate_batch(records, known_orgs=None if settings.auto_provision_orgs else known,
                                      payload_bytes_max=settings.payload_bytes_max)
        await rt.provision(seen - known)
        return result

    async def do_classify(records: list[Record]) -> BatchResult:
        envelopes = [json.loads(r.value) for r in records]
        ctx = await rt.classify_context({e["event"]["organization_id"] for e in envelopes})
        result = classify_batch(envelopes, ctx)
        if result.reviews:  # the review queue is durable in the ledger before the batch is acked
            store = await rt.store()
            await store.add_reviews([
                {"org_id": item["event"]["organization_id"], "event_id": item["event"]["event_id"],
                 "payload": item, "suggested_smart_code": item["classification"]["smart_code"],
                 "confidence": item["classification"]["confidence"], "reason": item["review_reason"]}
                for item in result.reviews])
        return result

    async def do_post(records: list[Record]) -> BatchResult:
        store = await rt.store()
        return await post_batch([json.loads(r.value) for r in records], store)

    async def do_audit(records: list[Record]) -> BatchResult:
        store = await rt.store()
        await store.append_audit([a for rec in records for a in audit_records(json.loads(rec.value)["records"])])
        return BatchResult()

    async def gate_admission(records: list[Record]) -> tuple[list[Record], BatchResult]:
        """Dedupe and rate-limit fresh events; re-admitted ones (from the deferred topic) pass."""
        envelopes = [json.loads(r.value) for r in records]
        fresh = [(i, env) for i, env in enumerate(envelopes) if not env.get("admitted")]
        keep = {i for i, env in enumerate(envelopes) if env.get("admitted")}
        limit_of = await retry_transient("admission", lambda: rt.limits({e["event"]["organization_id"]
                                                                         for _, e in fresh}))
        decisions = admit_new(tables, [(env, records[i].partition) for i, env in fresh], limit_of)
        result = BatchResult()
        for (i, env), adm in zip(fresh, decisions.admissions, strict=True):
            if adm.verdict is Verdict.ADMIT:
                keep.add(i)
            else:
                admission_outcome(result, env, adm)
        return [r for i, r in enumerate(records) if i in keep], result

    async def do_deferred(records: list[Record]) -> BatchResult:
        """Re-admit parked events when their organisation's quota frees, in order."""
        envelopes = [json.loads(r.value) for r in records]
        wait = min(env["parked"]["not_before"] for env in envelopes) - time.time()
        if wait > 0:
            await asyncio.sleep(min(wait, DEFER_SLEEP_SECONDS_MAX))
        limit_of = await rt.limits({e["event"]["organization_id"] for e in envelopes})
        decisions = admit_parked(tables, [(env, r.partition) for env, r in zip(envelopes, records, strict=True)],
                                 limit_of)
        result = BatchResult()
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
                orgs.add(str(json.loads(r.value)["organization_id"]))
        memory = await rt.memory(orgs & await rt.known_orgs())
        result, taught = await apply_decisions(records, store=store, catalog=rt.catalog(), memory=memory)
        await rt.save_memory(taught)
        return result

    stage_agent("validate", "raw", do_validate)
    stage_agent("classify", "validated", do_classify, gate=gate_admission)
    stage_agent("deferred", "deferred", do_deferred)
    stage_agent("review", "decisions", do_review)
    stage_agent("post", "classified", do_post)
    stage_agent("audit", "audit", do_audit)

    @app.on_before_shutdown.connect  # type: ignore[untyped-decorator]
    async def _close(app: faust.App, **_: Any) -> None:
        await rt.close()

    return rt
