"""The generic agent loop: take → process → settle → release, independent of Faust.

* **take**: a batch from the source, closed as soon as nothing more is buffered or at a size cap
  (``agents/source.py``): one record when the worker is idle, thousands under backlog;
* **process**: the batch's CPU work and its stateful decisions (validation, admission,
  classification), one batch after the other, in the order the records came;
* **settle**: the batch's durable effects, in two steps: ``write`` (the database transactions),
  which overlaps the next batch's processing and the earlier batches' own settling, then ``settle``
  proper (produced messages), which waits for every earlier batch of the same partitions to be
  released, so outputs keep their order per partition (at most ``in_flight_max`` batches between
  take and release);
* **release**: the records are acknowledged as soon as their batch has settled and every earlier
  batch holding records of the same partitions has been released: outputs and offsets keep their
  order per partition, not per batch, so a slow batch on one partition never holds up another's.

Writes may overlap because they are idempotent and independent of one another (the ledger keys
entries by event, so a write that lands before an earlier batch's is still the same write); what a
consumer sees, the produced messages and the acknowledged offsets, stays in order.

A batch that fails to settle (after its retries) stops the loop with ``SettleFailed``: its records,
and those of any later batch on the same partitions, are never acknowledged, so they are redelivered
to the partition's next owner. On cancellation (worker shutdown) nothing in flight is acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from pipeline.domain.errors import HeraError
from pipeline.envelopes import Record

log = logging.getLogger("hera.runner")

R = TypeVar("R")
Partition = tuple[str, int]
IN_FLIGHT_MAX = 2


class SettleFailed(HeraError):
    """A batch could not be made durable or published; its records stay unacknowledged."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One taken record and how to release it (acknowledge it to the source)."""

    record: Record
    ack: Callable[[], None]


@dataclass(slots=True)
class Stage(Generic[R]):
    """What a runner drives: ``process`` a batch of records into a result, ``write`` its durable state
    (optional; may overlap earlier batches), ``settle`` it (in order per partition)."""

    name: str
    process: Callable[[list[Record]], Awaitable[R]]
    settle: Callable[[R], Awaitable[None]]
    write: Callable[[R], Awaitable[None]] | None = None
    on_taken: Callable[[list[Delivery]], None] | None = None
    on_processed: Callable[[int, float], None] | None = None  # (records, seconds from take to processed)
    on_released: Callable[[int, float], None] | None = None  # (records, seconds from take to release)


class Runner(Generic[R]):
    """``in_flight_max`` batches between take and release; under backlog (a batch of at least
    ``backlog_size`` records) up to ``backlog_in_flight_max``: large batches gain from more overlap of
    their database writes and publishing, while small ones would only pay their fixed costs more often."""

    def __init__(self, stage: Stage[R], *, in_flight_max: int = IN_FLIGHT_MAX,
                 backlog_in_flight_max: int | None = None, backlog_size: int | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        if in_flight_max < 1:
            raise ValueError("in_flight_max must be at least 1")
        self.stage = stage
        self.in_flight_max = in_flight_max
        self.backlog_in_flight_max = max(in_flight_max, backlog_in_flight_max or in_flight_max)
        self.backlog_size = backlog_size
        self._clock = clock
        self._tails: dict[Partition, asyncio.Task[None]] = {}
        self._active: set[asyncio.Task[None]] = set()

    async def run(self, batches: AsyncIterable[Sequence[Delivery]]) -> None:
        """Drive every batch of ``batches`` through the stage; returns when the source ends and
        everything taken has been released."""
        try:
            async for batch in batches:
                if batch:
                    await self._take(list(batch))
            await self._drain()
        finally:
            for task in self._active:
                task.cancel()  # not settled: its records stay unacknowledged and are redelivered
            if self._active:
                await asyncio.gather(*self._active, return_exceptions=True)

    async def _take(self, batch: list[Delivery]) -> None:
        started = self._now()
        if self.stage.on_taken is not None:
            self.stage.on_taken(batch)
        result = await self.stage.process([d.record for d in batch])
        if self.stage.on_processed is not None:
            self.stage.on_processed(len(batch), self._now() - started)
        partitions = {(d.record.topic, d.record.partition) for d in batch}
        after = {t for p in partitions if (t := self._tails.get(p)) is not None}
        task = asyncio.ensure_future(self._settle(batch, result, after, started))
        for p in partitions:
            self._tails[p] = task
        self._active.add(task)
        task.add_done_callback(self._done)
        cap = self.in_flight_max
        if self.backlog_size is not None and len(batch) >= self.backlog_size:
            cap = self.backlog_in_flight_max
        while len(self._active) >= cap:
            await asyncio.wait(self._active, return_when=asyncio.FIRST_COMPLETED)
        self._raise_failed()

    async def _settle(self, batch: list[Delivery], result: R, after: set[asyncio.Task[None]],
                      started: float) -> None:
        if self.stage.write is not None:
            try:
                await self.stage.write(result)
            except Exception as exc:
                raise self._failed(batch, exc) from exc
        if after:
            await asyncio.gather(*after)  # an earlier batch of the same partitions failed: so do we
        try:
            await self.stage.settle(result)
        except Exception as exc:
            raise self._failed(batch, exc) from exc
        for delivery in batch:
            delivery.ack()
        if self.stage.on_released is not None:
            self.stage.on_released(len(batch), self._now() - started)

    def _failed(self, batch: list[Delivery], exc: Exception) -> SettleFailed:
        log.exception("%s: batch of %d not settled; its records stay unacknowledged", self.stage.name, len(batch))
        return SettleFailed(f"{self.stage.name}: batch of {len(batch)} not settled: {exc!r}")

    def _done(self, task: asyncio.Task[None]) -> None:
        self._active.discard(task)
        if task.cancelled() or task.exception() is not None:
            return  # kept: the failure is raised by the loop, and later batches of its partitions fail
        for p in [p for p, t in self._tails.items() if t is task]:
            del self._tails[p]  # released: later batches of p need not wait for it

    def _raise_failed(self) -> None:
        for task in list(self._tails.values()):
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    async def _drain(self) -> None:
        while self._active:
            await asyncio.wait(self._active, return_when=asyncio.FIRST_COMPLETED)
            self._raise_failed()
        self._raise_failed()

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()
