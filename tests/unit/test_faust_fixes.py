"""The Faust rebalance fixes (agents/faust_fixes.py) on stand-ins for the consumer: no broker.

The fault tests (tests/faults) are the integration proof; these pin the logic: a seek waits for the
record being handed out, lands every source partition on its committed offset with the acked and gap
bookkeeping purged, and puts the flow back; skipped messages are not acked; resuming running flow
control keeps the queues.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from mode.utils.queues import FlowControlEvent, FlowControlQueue

from agents import faust_fixes
from agents.faust_fixes import (
    guarded_ack,
    idempotent_resume,
    is_skipped_unprocessed,
    offsets_after_seek,
    quiesced_perform_seek,
    seek_state,
    tracked_getmany,
)

SRC_A, SRC_B, SRC_ZERO, CHANGELOG = ("raw", 0), ("raw", 1), ("validated", 0), ("app-dedupe-changelog", 0)


class FakeClient:
    """The aiokafka consumer, as far as the rewind of uncommitted partitions uses it."""

    def __init__(self) -> None:
        self.seeks: list[tuple[Any, int]] = []
        self.to_beginning: list[Any] = []

    def seek(self, tp: Any, offset: int) -> None:
        self.seeks.append((tp, offset))

    async def seek_to_beginning(self, *tps: Any) -> None:
        self.to_beginning.extend(tps)


class FakeThread:
    def __init__(self) -> None:
        self.client = FakeClient()

    def _ensure_consumer(self) -> FakeClient:
        return self.client

    async def call_thread(self, fun: Any, *args: Any) -> Any:
        return await fun(*args)


class FakeConsumer:
    """The attributes of ``faust.transport.consumer.Consumer`` that the seek touches."""

    def __init__(self, committed: dict[Any, int | None], flow_control: FlowControlEvent) -> None:
        self.app = SimpleNamespace(flow_control=flow_control,
                                   conf=SimpleNamespace(consumer_auto_offset_reset="earliest"))
        self._thread = FakeThread()
        self.flow_active = True
        self.committed = committed
        self.seek_calls = 0
        self._read_offset: dict[Any, int | None] = defaultdict(lambda: None)
        self._committed_offset: dict[Any, int | None] = defaultdict(lambda: None)
        self._acked: dict[Any, list[int]] = defaultdict(list)
        self._acked_index: dict[Any, set[int]] = defaultdict(set)
        self._gap: dict[Any, object] = {}

    def stop_flow(self) -> None:
        self.flow_active = False

    def resume_flow(self) -> None:
        self.flow_active = True

    def _is_changelog_tp(self, tp: Any) -> bool:
        return "changelog" in tp[0]

    async def seek_to_committed(self) -> dict[Any, int | None]:
        self.seek_calls += 1
        return dict(self.committed)


def running_flow_control() -> FlowControlEvent:
    flow_control = FlowControlEvent(initially_suspended=False)
    flow_control.resume = idempotent_resume(FlowControlEvent.resume).__get__(flow_control)  # type: ignore[method-assign]
    return flow_control


def test_skipped_unprocessed_only_for_untracked_old_generation_or_suspended_flow() -> None:
    base = {"tracked": False, "acking_topic": True, "flow_active": True, "message_generation": 3, "app_generation": 3}
    assert not is_skipped_unprocessed(**base)  # type: ignore[arg-type]
    assert is_skipped_unprocessed(**{**base, "message_generation": 2})  # type: ignore[arg-type]
    assert is_skipped_unprocessed(**{**base, "flow_active": False})  # type: ignore[arg-type]
    # filtered out by a processor (Skip): tracked first, must be acked
    assert not is_skipped_unprocessed(**{**base, "tracked": True, "message_generation": 2})  # type: ignore[arg-type]
    assert not is_skipped_unprocessed(**{**base, "acking_topic": False, "flow_active": False})  # type: ignore[arg-type]


def test_guarded_ack_does_not_ack_a_skipped_message() -> None:
    acked: list[int] = []

    def original(event: Any) -> bool:
        acked.append(event.message.offset)
        return True

    ack = guarded_ack(original)
    app = SimpleNamespace(topics=SimpleNamespace(acking_topics={"raw"}), consumer_generation_id=5,
                          flow_control=SimpleNamespace(is_active=lambda: True))

    def event(offset: int, generation: int, tracked: bool) -> Any:
        return SimpleNamespace(app=app, message=SimpleNamespace(topic="raw", partition=0, offset=offset,
                                                                generation_id=generation, tracked=tracked))

    assert ack(event(1, 4, tracked=False)) is False  # fetched before the rebalance, skipped
    assert ack(event(2, 5, tracked=True)) is True  # processed
    assert ack(event(3, 4, tracked=True)) is True  # processed in the old generation, acked after
    assert acked == [2, 3]


async def test_resuming_running_flow_control_keeps_the_queues() -> None:
    flow_control = running_flow_control()
    queue: FlowControlQueue[int] = FlowControlQueue(flow_control=flow_control, clear_on_resume=True)
    queue.put_nowait(1)
    flow_control.resume()  # already running: nothing dropped
    assert queue.qsize() == 1
    flow_control.suspend()
    flow_control.resume()  # suspended -> running: queued leftovers are dropped as before
    assert queue.qsize() == 0 and flow_control.is_active()


def test_offsets_after_seek_match_faust() -> None:
    read, done = offsets_after_seek({SRC_A: 10, SRC_B: None, SRC_ZERO: 0})
    assert read == {SRC_A: 10, SRC_B: None, SRC_ZERO: 0}
    assert done == {SRC_A: 10, SRC_ZERO: None}


async def test_seek_lands_on_committed_purges_bookkeeping_and_restores_the_flow() -> None:
    flow_control = running_flow_control()
    consumer = FakeConsumer({SRC_A: 10, SRC_B: None, SRC_ZERO: 0, CHANGELOG: None}, flow_control)
    queue: FlowControlQueue[str] = FlowControlQueue(flow_control=flow_control, clear_on_resume=True)
    queue.put_nowait("delivered before the seek")
    consumer._read_offset[SRC_A] = 57  # the fetcher had handed out up to 57
    consumer._acked[SRC_A] = [12, 13, 13, 14]  # stale, with a duplicate from a bogus gap
    consumer._acked_index[SRC_A] = {12, 13, 14}
    consumer._gap[SRC_A] = object()
    consumer._acked[CHANGELOG] = [1]

    await quiesced_perform_seek(consumer)

    assert consumer.seek_calls == 1
    assert consumer._read_offset[SRC_A] == 10 and consumer._committed_offset[SRC_A] == 10
    assert SRC_A not in consumer._acked and SRC_A not in consumer._acked_index and SRC_A not in consumer._gap
    assert consumer._acked[CHANGELOG] == [1]  # changelog partitions are not the seek's business
    client = consumer._thread.client
    assert client.seeks == [(SRC_ZERO, 0)] and client.to_beginning == [SRC_B]  # aiokafka leaves these alone
    assert consumer.flow_active and flow_control.is_active()
    assert queue.qsize() == 0  # pre-seek deliveries are dropped and fetched again


async def test_seek_from_a_stopped_flow_leaves_it_stopped() -> None:
    flow_control = running_flow_control()
    flow_control.suspend()
    consumer = FakeConsumer({SRC_A: 3}, flow_control)
    consumer.flow_active = False
    await quiesced_perform_seek(consumer)
    assert not consumer.flow_active and not flow_control.is_active()


async def test_seek_failure_restores_the_flow() -> None:
    flow_control = running_flow_control()
    consumer = FakeConsumer({SRC_A: 3}, flow_control)

    async def broken() -> dict[Any, int | None]:
        raise RuntimeError("broker gone")

    consumer.seek_to_committed = broken  # type: ignore[method-assign]
    try:
        await quiesced_perform_seek(consumer)
    except RuntimeError:
        pass
    assert consumer.flow_active and flow_control.is_active()


async def test_seek_waits_for_the_record_being_handed_out() -> None:
    """The fetcher loop sets the read offset after delivering a record; the seek must not reset the
    read offsets before that, or the loop puts them back past records never processed."""
    flow_control = running_flow_control()
    consumer = FakeConsumer({SRC_A: 10}, flow_control)

    async def original(self: Any, timeout: float) -> Any:
        for offset in (10, 11, 12):
            if not self.flow_active:  # as Consumer.getmany: stop handing out when the flow stops
                break
            yield SRC_A, SimpleNamespace(offset=offset)

    getmany = tracked_getmany(original)
    delivered: list[int] = []
    release = asyncio.Event()

    async def drain() -> None:  # Consumer._drain_messages in short
        async for tp, message in getmany(consumer, 1.0):
            await release.wait()  # delivering (callback into a full queue, say)
            delivered.append(message.offset)
            consumer._read_offset[tp] = message.offset

    fetcher = asyncio.ensure_future(drain())
    await asyncio.sleep(0)
    assert not seek_state(consumer).idle.is_set()
    seek = asyncio.ensure_future(quiesced_perform_seek(consumer))
    await asyncio.sleep(0.01)
    assert consumer.seek_calls == 0  # still waiting for the record in hand
    release.set()
    await asyncio.wait_for(asyncio.gather(fetcher, seek), 1)
    assert delivered == [10]  # the flow stopped: nothing more handed out
    assert consumer._read_offset[SRC_A] == 10  # and the seek came after the loop's write
    assert consumer.seek_calls == 1 and seek_state(consumer).idle.is_set()


def test_install_is_idempotent() -> None:
    from faust.events import Event
    from faust.transport.consumer import Consumer

    faust_fixes.install()
    patched = (Consumer.perform_seek, Consumer.getmany, Event.ack, FlowControlEvent.resume)
    faust_fixes.install()
    assert (Consumer.perform_seek, Consumer.getmany, Event.ack, FlowControlEvent.resume) == patched
