"""Poison handling: one message that breaks a step is dead-lettered, and the batch goes on.

``isolate(step, items, fn, letter)`` runs ``fn`` on the whole batch. Transient faults (database or
broker unreachable) are retried by the one retry policy (``pipeline/resilience/retry.py``) and raised
when it gives up. Any other exception is a poison message somewhere in the batch: the items are run
one at a time, and an item whose run raises is dead-lettered with reason ``POISON`` and the
exception as detail (its original bytes, where it came from, and an audit record), while every other
item's result is kept. Nothing is dropped: every item ends in its own result or in a dead letter.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pipeline.domain.outcomes import Outcome, Reason
from pipeline.envelopes import Emit, Record, dead_letter
from pipeline.flow import Staged, audit_record
from pipeline.observability import metrics
from pipeline.resilience.retry import retry_policy

log = logging.getLogger("hera.agents")

T = TypeVar("T")
Letter = tuple[Emit, dict[str, Any]]
LetterFn = Callable[[T, str, BaseException], Letter]
DETAIL_CHARS_MAX = 300


def detail(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:DETAIL_CHARS_MAX]


def record_letter(rec: Record, step: str, exc: BaseException) -> Letter:
    """The POISON dead letter of a consumed record: its own bytes and coordinates."""
    source = f"{rec.topic}/{rec.partition}/{rec.offset}"
    return (dead_letter(rec.value, Reason.POISON, detail(exc), stage=step, topic=rec.topic, partition=rec.partition,
                        offset=rec.offset, key=rec.key),
            audit_record(step, None, None, "rejected", reason="POISON", source=source))


def add_letter(staged: Staged, letter: Letter) -> None:
    """Record one item's POISON outcome: its dead letter, its count and its audit record."""
    emit, audit = letter
    staged.out.emits.append(emit)
    staged.out.count(Outcome.REJECTED, Reason.POISON)
    staged.out.audit.append(audit)


async def isolate(step: str, items: list[T], fn: Callable[[list[T]], Awaitable[Staged]],
                  letter: LetterFn[T]) -> Staged:
    """``fn(items)``; if it raises (not transiently), each item alone, dead-lettering those that raise."""
    policy = retry_policy(step)
    try:
        return await policy.call(lambda: fn(items))
    except Exception as exc:
        if policy.is_retryable(exc):
            raise  # the retries ran out: not the items' fault, nothing is dead-lettered
        if len(items) == 1:
            return _poisoned(step, items[0], exc, letter, Staged())
        log.warning("%s: batch of %d failed (%s); running its items one at a time", step, len(items), detail(exc))
    merged = Staged()
    for item in items:
        try:
            merged.merge(await policy.call(lambda item=item: fn([item])))  # type: ignore[misc]
        except Exception as exc:
            if policy.is_retryable(exc):
                raise
            _poisoned(step, item, exc, letter, merged)
    return merged


def _poisoned(step: str, item: T, exc: BaseException, letter: LetterFn[T], result: Staged) -> Staged:
    made = letter(item, step, exc)
    audit = made[1]
    log.error("%s: dead-lettered as POISON: %s", step, detail(exc),
              extra={"org": audit.get("organization_id"), "event_id": audit.get("event_id")})
    metrics.POISON.labels(step).inc()
    add_letter(result, made)
    return result
