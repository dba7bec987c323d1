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

The fixes (installed through ``agents.patches.install``, idempotent)
-------------------------------------------------------------------
Each is here because a test on Apache Kafka fails without it. ``seek``: without it
``tests/faults/test_worker_faults.py`` failed in both of two runs (the kill -9 test timed out, the
two-worker test left 8 records stuck at 'validated'). ``verify_event_path``: without it a worker of
the two-worker test exited with 1 (both runs). ``resume``, ``getmany`` and ``ack`` were dropped
after two clean runs without them, and restored on 2026-12-03: without them,
``test_two_workers_share_partitions_one_stops_mid_stream`` left 75 records stuck ('validated' and
'raw only', below the committed offset's reach) in one run, and
``test_broker_kill_9_mid_stream_then_restart`` left 50 in another, which is the failure mode of
item 1 above (one run in four and one in nine). ``HERA_FAUST_FIXES_OFF=<name>`` leaves one out.

* ``Consumer.perform_seek`` is quiesced: the consumer flow is stopped and app flow control
  suspended, the seek waits until the fetcher loop has finished the record it is handing out, then
  seeks every assigned source partition to its committed offset (to the start when nothing is
  committed yet and ``auto_offset_reset`` is earliest: aiokafka leaves such partitions where they
  were), resets the read and committed offsets, and purges the acked / gap bookkeeping of those
  partitions so that commits restart from the committed offset. It then puts flow control and the
  flow back as they were; resuming flow control clears the queues of what was delivered before the
  seek, which is fetched again. A pre-seek batch that the fetcher returns while the flow is stopped
  is discarded by Faust itself, which seeks again (through this same seek).
* ``FlowControlEvent.resume`` does nothing when flow control is already running: the recovery
  service resumes it once more after the seek, and clearing the queues then would drop records
  delivered from the committed offsets (and changelog records meant for standby tables).
* ``Consumer.getmany`` records when a fetched record is being handed out, for the wait above.
* ``Event.ack`` never acks a message skipped for an old generation or suspended flow control (it
  was never processed; it is fetched again after the seek to the committed offset).
* Faust's livelock detector skips a partition that has no fetch position yet (sought to its
  beginning, offset not yet resolved) instead of crashing the worker on aiokafka's assertion.

This is at-least-once: records processed before the seek are processed again after it; the
admission tables recognise the same record by its coordinates and the ledger has a unique
(organization_id, event_id), so a redelivered record changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

log = logging.getLogger("hera.faust_fixes")

#: How long a seek waits for the fetcher loop to finish handing out its current record.
DELIVERY_IDLE_TIMEOUT_SECONDS = 10.0

_installed = False


class SeekState:
    """Per-consumer state of the fixes: one seek at a time; is the fetcher handing out a record?"""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.idle = asyncio.Event()
        self.idle.set()


def seek_state(consumer: Any) -> SeekState:
    state = consumer.__dict__.get("_hera_seek_state")
    if state is None:
        state = consumer.__dict__["_hera_seek_state"] = SeekState()
    return state


def is_skipped_unprocessed(*, tracked: bool, acking_topic: bool, flow_active: bool, message_generation: int,
                           app_generation: int) -> bool:
    """True for a message that ``Stream._py_aiter`` skipped without processing it.

    The stream skips a message when flow control is suspended or the message was fetched in an
    older generation, *before* it marks the message as tracked; a message filtered out by a
    processor (``Skip``) was tracked first and must still be acked.
    """
    return acking_topic and not tracked and (not flow_active or message_generation != app_generation)


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
            try:
                await asyncio.wait_for(state.idle.wait(), timeout=DELIVERY_IDLE_TIMEOUT_SECONDS)
            except TimeoutError:
                log.warning("seek: the fetcher did not finish handing out a record in %.0fs; seeking anyway",
                            DELIVERY_IDLE_TIMEOUT_SECONDS)
            waited = time.monotonic() - started
            committed = await consumer.seek_to_committed()
            sources = {tp: offset for tp, offset in committed.items() if not consumer._is_changelog_tp(tp)}
            await _rewind_uncommitted(consumer, sources)
            read, done = offsets_after_seek(committed)
            consumer._read_offset.update(read)
            consumer._committed_offset.update(done)
            purge_bookkeeping(consumer, sources)
            log.info("Seek to committed offsets with the flow stopped: %d source partitions in %.2fs "
                     "(%.2fs waiting for the fetcher)", len(sources), time.monotonic() - started, waited)
        finally:
            # Resuming flow control clears the stream queues: what the fetcher delivered before the
            # seek is dropped there and, the read offsets being back at the committed ones, fetched again.
            if control_active:
                flow_control.resume()
            if flow_active:
                consumer.resume_flow()


def idempotent_resume(original: Callable[[Any], None]) -> Callable[[Any], None]:
    """Wrap ``FlowControlEvent.resume``: resuming flow control that is already running must not
    clear the queues (Faust's recovery resumes it again after the seek; the queues then hold records
    delivered from the committed offsets, which the read offsets count as read)."""

    def resume(self: Any) -> None:
        if self.is_active():
            return
        original(self)

    return resume


def tracked_getmany(original: Callable[[Any, float], AsyncIterator[Any]]
                    ) -> Callable[[Any, float], AsyncIterator[Any]]:
    """Wrap ``Consumer.getmany``: mark the time between handing out a record and being asked for
    the next one (the fetcher loop delivers it and sets the read offset in between)."""

    async def getmany(self: Any, timeout: float) -> AsyncIterator[Any]:
        state = seek_state(self)
        records = original(self, timeout)
        try:
            async for item in records:
                state.idle.clear()
                try:
                    yield item
                finally:
                    state.idle.set()
        finally:
            await records.aclose()  # type: ignore[attr-defined]

    return getmany


def guarded_ack(original: Callable[[Any], bool]) -> Callable[[Any], bool]:
    def ack(self: Any) -> bool:
        message, app = self.message, self.app
        if is_skipped_unprocessed(tracked=message.tracked, acking_topic=message.topic in app.topics.acking_topics,
                                  flow_active=app.flow_control.is_active(),
                                  message_generation=message.generation_id,
                                  app_generation=app.consumer_generation_id):
            log.debug("not acking skipped message %s/%s@%s (generation %s, app generation %s)", message.topic,
                      message.partition, message.offset, message.generation_id, app.consumer_generation_id)
            return False
        return original(self)

    return ack


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
    from faust.events import Event
    from faust.transport.consumer import Consumer
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
    from mode.utils.queues import FlowControlEvent

    async def perform_seek(self: Any) -> None:
        await quiesced_perform_seek(self)

    if "seek" not in disabled:
        Consumer.perform_seek = perform_seek  # type: ignore[method-assign]
    if "getmany" not in disabled:
        Consumer.getmany = tracked_getmany(Consumer.getmany)  # type: ignore[method-assign,assignment]
    if "ack" not in disabled:
        Event.ack = guarded_ack(Event.ack)  # type: ignore[method-assign,assignment]
    if "resume" not in disabled:
        FlowControlEvent.resume = idempotent_resume(FlowControlEvent.resume)  # type: ignore[method-assign,assignment]
    if "verify_event_path" not in disabled:
        AIOKafkaConsumerThread.verify_event_path = positioned_verify_event_path(  # type: ignore[method-assign,assignment]
            AIOKafkaConsumerThread.verify_event_path)
    _installed = True


__all__: list[str] = ["guarded_ack", "idempotent_resume", "install", "is_skipped_unprocessed", "offsets_after_seek",
                      "positioned_verify_event_path", "purge_bookkeeping", "quiesced_perform_seek", "tracked_getmany"]
