"""The generic agent loop (agents/runner.py) against an in-memory stream and a fake clock:
release order per partition, acks only after settle, nothing acked on failure or cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from agents.runner import Delivery, Runner, SettleFailed, Stage
from pipeline.envelopes import Record


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Memory:
    """An in-memory stream: batches of records whose acks are recorded in order."""

    def __init__(self, batches: list[list[tuple[int, int]]]) -> None:
        self.batches = batches
        self.acked: list[tuple[int, int]] = []

    def delivery(self, partition: int, offset: int) -> Delivery:
        rec = Record(topic="t", partition=partition, offset=offset, key=None, value=b"%d" % offset)
        return Delivery(rec, lambda: self.acked.append((partition, offset)))

    async def __aiter__(self) -> AsyncIterator[Sequence[Delivery]]:
        for batch in self.batches:
            yield [self.delivery(p, o) for p, o in batch]


def coords(records: list[Record]) -> list[tuple[int, int]]:
    return [(r.partition, r.offset) for r in records]


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, timeout=10))


def test_each_batch_is_acked_only_after_it_settled_and_in_order() -> None:
    source = Memory([[(0, 0), (1, 0)], [(0, 1)], [(1, 1), (0, 2)]])
    settled: list[list[tuple[int, int]]] = []

    async def process(records: list[Record]) -> list[tuple[int, int]]:
        return coords(records)

    async def settle(result: list[tuple[int, int]]) -> None:
        assert not set(result) & set(source.acked)  # nothing of a batch is acked before it settled
        settled.append(result)

    run(Runner(Stage("t", process, settle)).run(source))
    assert settled == [[(0, 0), (1, 0)], [(0, 1)], [(1, 1), (0, 2)]]
    assert source.acked == [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2)]


def test_a_slow_batch_holds_back_its_own_partitions_only() -> None:
    """Batch 1 (partition 0) settles slowly; batch 2 (partition 1) is released before it, batch 3
    (partition 0 again) only after it."""
    source = Memory([[(0, 0)], [(1, 0)], [(0, 1)]])
    gate = asyncio.Event()

    async def process(records: list[Record]) -> list[tuple[int, int]]:
        return coords(records)

    async def settle(result: list[tuple[int, int]]) -> None:
        if result == [(0, 0)]:
            await gate.wait()
        elif result == [(1, 0)]:
            gate.set()  # partition 1 settles (and is released) while partition 0 still waits

    run(Runner(Stage("t", process, settle), in_flight_max=3).run(source))
    assert source.acked.index((1, 0)) < source.acked.index((0, 0)) < source.acked.index((0, 1))


def test_a_failed_settle_stops_the_loop_and_acks_nothing_after_it_on_its_partition() -> None:
    source = Memory([[(0, 0)], [(0, 1)], [(1, 0)]])

    async def process(records: list[Record]) -> list[tuple[int, int]]:
        return coords(records)

    async def settle(result: list[tuple[int, int]]) -> None:
        if result == [(0, 0)]:
            raise ConnectionError("database gone for good")

    with pytest.raises(SettleFailed):
        run(Runner(Stage("t", process, settle), in_flight_max=2).run(source))
    assert (0, 0) not in source.acked and (0, 1) not in source.acked


def test_cancellation_acks_nothing_in_flight() -> None:
    source = Memory([[(0, 0)], [(0, 1)]])
    started = asyncio.Event()

    async def process(records: list[Record]) -> list[tuple[int, int]]:
        return coords(records)

    async def settle(result: list[tuple[int, int]]) -> None:
        started.set()
        await asyncio.sleep(3600)

    async def scenario() -> None:
        task = asyncio.ensure_future(Runner(Stage("t", process, settle)).run(source))
        await started.wait()
        task.cancel()  # the worker stops (SIGTERM): Faust cancels the agent
        with pytest.raises(asyncio.CancelledError):
            await task

    run(scenario())
    assert source.acked == []


def test_shutdown_drains_what_was_taken_and_reports_times_on_the_fake_clock() -> None:
    source = Memory([[(0, 0), (0, 1)], [(0, 2)]])
    clock = FakeClock()
    released: list[tuple[int, float]] = []

    async def process(records: list[Record]) -> int:
        clock.now += 0.5
        return len(records)

    async def settle(_: int) -> None:
        clock.now += 0.25

    stage = Stage("t", process, settle, on_released=lambda n, s: released.append((n, s)))
    run(Runner(stage, in_flight_max=1, clock=clock).run(source))  # the source ends: everything released
    assert source.acked == [(0, 0), (0, 1), (0, 2)]
    assert released == [(2, 0.75), (1, 0.75)]


def peak_in_flight(source: Memory, settle_seconds: float, **runner_options: int) -> int:
    """Run ``source`` through a runner whose settle takes ``settle_seconds``; the most batches that
    were between take and release at once."""
    in_flight, peak = 0, 0

    async def process(records: list[Record]) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)

    async def settle(_: None) -> None:
        nonlocal in_flight
        await asyncio.sleep(settle_seconds)
        in_flight -= 1

    run(Runner(Stage("t", process, settle), **runner_options).run(source))
    return peak


def test_at_most_in_flight_max_batches_between_take_and_release() -> None:
    source = Memory([[(p, 0)] for p in range(6)])  # six partitions: nothing orders them
    assert peak_in_flight(source, 0, in_flight_max=2) == 2 and len(source.acked) == 6


@pytest.mark.parametrize(("size", "peak_expected"), [(1, 2), (3, 4)])
def test_under_backlog_more_batches_are_in_flight(size: int, peak_expected: int) -> None:
    source = Memory([[(p, o) for o in range(size)] for p in range(8)])  # eight partitions, batches of `size`
    peak = peak_in_flight(source, 0.01, in_flight_max=2, backlog_in_flight_max=4, backlog_size=3)
    assert peak == peak_expected and len(source.acked) == 8 * size


def test_a_later_batch_writes_while_an_earlier_one_settles_but_settles_after_it() -> None:
    # batch 1's write is slow; batch 2 (same partition) writes meanwhile, yet publishes and acks after batch 1
    source = Memory([[(0, 0)], [(0, 1)]])
    events: list[str] = []
    first_may_finish = asyncio.Event()

    async def process(records: list[Record]) -> int:
        return records[0].offset

    async def write(offset: int) -> None:
        events.append(f"write {offset} start")
        if offset == 0:
            await first_may_finish.wait()
        else:
            first_may_finish.set()  # only reachable if batch 2 writes while batch 1 is still writing
        events.append(f"write {offset} done")

    async def settle(offset: int) -> None:
        events.append(f"settle {offset}")

    run(Runner(Stage("t", process, settle, write), in_flight_max=2).run(source))
    assert events == ["write 0 start", "write 1 start", "write 1 done", "write 0 done", "settle 0", "settle 1"]
    assert source.acked == [(0, 0), (0, 1)]


def test_a_failed_write_acks_nothing_of_its_batch_or_of_later_batches_of_its_partitions() -> None:
    source = Memory([[(0, 0)], [(0, 1)], [(1, 0)]])
    settled: list[int] = []

    async def process(records: list[Record]) -> tuple[int, int]:
        return records[0].partition, records[0].offset

    async def write(key: tuple[int, int]) -> None:
        if key == (0, 0):
            await asyncio.sleep(0.01)
            raise ConnectionError("database gone")

    async def settle(key: tuple[int, int]) -> None:
        settled.append(key[1])

    with pytest.raises(SettleFailed):
        run(Runner(Stage("t", process, settle, write), in_flight_max=3).run(source))
    assert (0, 0) not in source.acked and (0, 1) not in source.acked
