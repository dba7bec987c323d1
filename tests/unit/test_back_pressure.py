"""Back-pressure while the database is away (agents/observe.py): partitions paused and resumed by the
breaker, and each resumed from the record after the last one its agent was handed."""

from __future__ import annotations

from typing import Any

from agents.observe import hold_partitions, rewind_undelivered


class FakeConsumer:
    """What the rewind reads and calls on Faust's consumer: the last offset delivered per partition,
    and ``seek``."""

    def __init__(self, delivered: dict[str, int | None]) -> None:
        self._read_offset = dict(delivered)
        self.seeks: list[tuple[str, int]] = []

    async def seek(self, tp: str, offset: int) -> None:
        self.seeks.append((tp, offset))
        self._read_offset[tp] = offset


async def test_resumed_partitions_start_after_the_last_record_delivered() -> None:
    consumer = FakeConsumer({"raw-0": 352, "raw-1": None})   # raw-1: nothing delivered since assignment
    await rewind_undelivered(consumer, {"raw-0", "raw-1", "raw-2"})
    assert consumer.seeks == [("raw-0", 353)]   # the fetch position had moved on past dropped records


def test_partitions_are_paused_while_the_breaker_is_open_and_resumed_after() -> None:
    paused: set[Any] = set()
    calls: list[tuple[str, set[Any]]] = []

    def pause(tps: Any) -> None:
        calls.append(("pause", set(tps)))

    def resume(tps: Any) -> None:
        calls.append(("resume", set(tps)))

    hold_partitions(True, {"a", "b"}, paused, pause, resume)
    hold_partitions(True, {"a", "b"}, paused, pause, resume)     # already paused: nothing again
    hold_partitions(False, {"a"}, paused, pause, resume)         # "b" was revoked meanwhile
    assert calls == [("pause", {"a", "b"}), ("resume", {"a"})] and not paused
