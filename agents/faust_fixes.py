"""Fixes for records never processed after a consumer-group rebalance (faust-streaming 0.15.3).

What goes wrong (seen with the fault tests, worker logs instrumented; issue 5)
---------------------------------------------------------------------------
After every rebalance Faust's recovery service (``Recovery.on_recovery_completed``, and
``_resume_streams`` when there are no tables) does, in this order::

    consumer.resume_partitions(<source partitions>)   # fetcher may now hand out source records
    await consumer.perform_seek()                     # seek to committed; _read_offset := committed
    app.flow_control.resume()                         # clears every stream queue (clear_on_resume)
    consumer.resume_flow()

but with tables the consumer flow and the app flow control are *already running* at that point
(they were resumed to read the changelogs). So the fetcher delivers source records from the
committed position while ``perform_seek`` is awaiting the broker. Three things then break:

1. The fetcher loop (``Consumer._drain_messages``) keeps handing out that pre-seek batch after
   ``perform_seek`` has reset ``_read_offset`` to the committed offset, and sets the read offset
   back to the high end of the batch. The same records, fetched again after the seek, are then
   dropped as "already read" ("DROPPED MESSAGE"), and any delivered one that a stream had not
   taken yet is thrown away by ``flow_control.resume()`` (which clears the stream queues). Those
   records are never processed and never acked, so the committed offset stays below them
   forever: the stuck 'validated' / 'raw only' records of the fault tests.
2. When the read offset is reset under the running batch, the next delivered offset looks like a
   hole (compaction / transaction markers) and ``_add_gap`` marks every offset in it as acked,
   unprocessed ones included (loss), and puts duplicate offsets in ``_acked`` so that each commit
   afterwards advances by a single offset (commits crawl).
3. A message fetched before a rebalance and delivered after it (older generation) or while flow
   control is suspended is skipped by ``Stream._py_aiter`` and *acked* anyway; its offset then
   sits in the consumer's ``_acked`` bookkeeping although it was never processed, and a commit can
   pass it before its redelivered copy is done.

The fixes we keep (installed through ``agents.patches.install``), each because a test on Apache Kafka
fails without it (re-tested 2026-12-03, ``HERA_FAUST_FIXES_OFF=<name>``, two runs each)
----------------------------------------------------------------------------------------------------
* ``seek``: ``Consumer.perform_seek`` is quiesced: the consumer flow is stopped and app flow
  control suspended, then every assigned source partition is sought to its committed offset (to
  the start when nothing is committed yet and ``auto_offset_reset`` is earliest: aiokafka leaves
  such partitions where they were), the read and committed offsets are reset, and the acked / gap
  bookkeeping of those partitions is purged so that commits restart from the committed offset.
  Flow control and the flow are then put back as they were; resuming flow control clears the
  queues of what was delivered before the seek, which is fetched again. Without it
  ``tests/faults/test_worker_faults.py`` fails: the kill -9 test timed out and the two-worker test
  left 8 records stuck at 'validated', never processed (both runs).
* ``verify_event_path``: Faust's livelock detector skips a partition that has no fetch position yet
  (sought to its beginning, offset not yet resolved) instead of crashing the worker on aiokafka's
  assertion. Without it the two-worker test of ``tests/faults/test_worker_faults.py`` failed in both
  runs: a worker exited with 1.

Dropped on real Kafka (no test failed without them: each off alone, two runs of the worker fault
tests; all three off together, the worker and broker fault tests twice): an idempotent
``FlowControlEvent.resume``, a ``Consumer.getmany`` that tracked the record being handed out, and
an ``Event.ack`` that refused skipped messages (item 3 above).

This is at-least-once: records processed before the seek are processed again after it; the
admission tables recognise the same record by its coordinates and the ledger has a unique
(organization_id, event_id), so a redelivered record changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger("hera.faust_fixes")

_installed = False


class SeekState:
    """Per-consumer state of the fix: one seek at a time."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()


def seek_state(consumer: Any) -> SeekState:
    state = consumer.__dict__.get("_hera_seek_state")
    if state is None:
        state = consumer.__dict__["_hera_seek_state"] = SeekState()
    return state


def offsets_after_seek(committed: Mapping[Any, int | None]) -> tuple[dict[Any, int | None], dict[Any, int | None]]:
    """(read offsets, committed offsets) for the consumer's bookkeeping after seeking to ``committed``,
    as ``Consumer.perform_seek`` computes them."""
    read = {tp: offset if offset is not None and offset >= 0 else None for tp, offset in committed.items()}
    done = {tp: offset if offset else None for tp, offset in committed.items() if offset is not None}
    return read, done


def purge_bookkeeping(consumer: Any, tps: Any) -> None:
    """Forget acked offsets and gaps of ``tps``: everything from the committed offset on is fetched
    and processed again, so commits must restart from the committed offset."""
    for tp in tps:
        consumer._acked.pop(tp, None)
        consumer._acked_index.pop(tp, None)
        consumer._gap.pop(tp, None)


async def _rewind_uncommitted(consumer: Any, committed: Mapping[Any, int | None]) -> None:
    """aiokafka's ``seek_to_committed`` leaves a partition without a committed offset (or at 0)
    where the fetcher got to; put it back at the start, where an uncommitted group begins."""
    zero = [tp for tp, offset in committed.items() if offset == 0]
    unset = [tp for tp, offset in committed.items() if offset is None]
    if consumer.app.conf.consumer_auto_offset_reset != "earliest":
        unset = []
    thread = getattr(consumer, "_thread", None)
    if thread is None or not (zero or unset):
        return

    async def rewind() -> None:
        client = thread._ensure_consumer()
        for tp in zero:
            client.seek(tp, 0)
        if unset:
            await client.seek_to_beginning(*unset)

    await thread.call_thread(rewind)


async def quiesced_perform_seek(consumer: Any) -> None:
    """Seek every assigned source partition to its committed offset with nothing in flight, then
    put the consumer flow and app flow control back as they were."""
    state = seek_state(consumer)
    async with state.lock:
        flow_active = consumer.flow_active
        flow_control = consumer.app.flow_control
        control_active = flow_control.is_active()
        consumer.stop_flow()
        flow_control.suspend()
        started = time.monotonic()
        try:
            committed = await consumer.seek_to_committed()
            sources = {tp: offset for tp, offset in committed.items() if not consumer._is_changelog_tp(tp)}
            await _rewind_uncommitted(consumer, sources)
            read, done = offsets_after_seek(committed)
            consumer._read_offset.update(read)
            consumer._committed_offset.update(done)
            purge_bookkeeping(consumer, sources)
            log.info("Seek to committed offsets with the flow stopped: %d source partitions in %.2fs",
                     len(sources), time.monotonic() - started)
        finally:
            # Resuming flow control clears the stream queues: what the fetcher delivered before the
            # seek is dropped there and, the read offsets being back at the committed ones, fetched again.
            if control_active:
                flow_control.resume()
            if flow_active:
                consumer.resume_flow()


def positioned_verify_event_path(original: Callable[[Any, float, Any], None]) -> Callable[[Any, float, Any], None]:
    """Wrap ``AIOKafkaConsumerThread.verify_event_path`` (Faust's livelock detector, every 2.5 s):
    skip a partition that has no fetch position yet. A partition sought to its beginning (no
    committed offset: the seek above) waits for its offset to be resolved; Faust read its position
    anyway and aiokafka's assertion crashed the worker (seen: a worker restarted after a kill -9
    that came before any commit). There is nothing to verify on such a partition yet."""

    def verify_event_path(self: Any, now: float, tp: Any) -> None:
        from aiokafka import TopicPartition

        consumer = self._consumer
        if consumer is not None:
            state = consumer._fetcher._subscriptions.subscription.assignment.state_value(
                TopicPartition(tp.topic, tp.partition))
            if state is not None and not state.has_valid_position:
                return None
        return original(self, now, tp)

    return verify_event_path


def install(disabled: set[str] | frozenset[str] = frozenset()) -> None:
    """Apply the fixes not named in ``disabled`` (once per process; through ``agents.patches.install``,
    which checks the versions first)."""
    global _installed
    if _installed:
        return
    from faust.transport.consumer import Consumer
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    async def perform_seek(self: Any) -> None:
        await quiesced_perform_seek(self)

    if "seek" not in disabled:
        Consumer.perform_seek = perform_seek  # type: ignore[method-assign]
    if "verify_event_path" not in disabled:
        AIOKafkaConsumerThread.verify_event_path = positioned_verify_event_path(  # type: ignore[method-assign,assignment]
            AIOKafkaConsumerThread.verify_event_path)
    _installed = True


__all__: list[str] = ["install", "offsets_after_seek", "positioned_verify_event_path", "purge_bookkeeping",
                      "quiesced_perform_seek"]
