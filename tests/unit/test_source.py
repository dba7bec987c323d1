"""Batches close as soon as nothing more is buffered, or at the size cap (agents/source.py), against a
stand-in for the few Faust stream members ``ready_batches`` uses."""

from __future__ import annotations

import asyncio
from typing import Any

from agents.source import ready_batches


class Message:
    def __init__(self, offset: int) -> None:
        self.topic, self.partition, self.offset, self.key, self.value = "t", 0, offset, None, b"%d" % offset
        self.timestamp = 1.0
        self.refcount = 1  # the stream's own reference

    def incref(self) -> None:
        self.refcount += 1


class Event:
    def __init__(self, offset: int) -> None:
        self.message = Message(offset)

    def ack(self) -> None:
        self.message.refcount -= 1


class Channel:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Event] = asyncio.Queue()

    def __aiter__(self) -> Channel:
        return self

    async def __anext__(self) -> Event:
        return await self.queue.get()


class Stream:
    """What Faust's Stream offers take_events: processors run by a passive drainer, manual acks."""

    def __init__(self) -> None:
        self.channel = Channel()
        self.processors: list[Any] = []
        self.current_event: Event | None = None
        self.should_stop = False
        self.enable_acks = True
        self.drainer: asyncio.Future[None] | None = None

    def add_processor(self, processor: Any) -> None:
        self.processors.append(processor)

    def _enable_passive(self, _: Any) -> None:
        self.drainer = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        while True:
            event = await self.channel.queue.get()
            self.current_event = event
            for processor in self.processors:
                await processor(event)

    async def wait_for_stopped(self, event: asyncio.Event, timeout: float) -> None:
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass

    async def wait(self, event: asyncio.Event) -> None:
        await event.wait()

    async def ack(self, event: Event) -> None:
        event.ack()


def offsets(batch: list[Any]) -> list[int]:
    return [d.record.offset for d in batch]


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, timeout=10))


def test_a_lone_event_is_a_batch_at_once_and_a_backlog_is_taken_whole() -> None:
    async def scenario() -> list[list[int]]:
        stream, seen = Stream(), []
        batches = ready_batches(stream, size_max=100)
        stream.channel.queue.put_nowait(Event(0))
        seen.append(offsets(await anext(batches)))  # no window to wait out: one event, one batch
        for offset in range(1, 6):  # five arrive while the first batch is being handled
            stream.channel.queue.put_nowait(Event(offset))
        await asyncio.sleep(0)
        seen.append(offsets(await anext(batches)))
        await batches.aclose()
        return seen

    seen = run(scenario())
    assert seen[0] == [0]
    assert seen[1] == [1, 2, 3, 4, 5]


def test_a_batch_never_exceeds_the_cap() -> None:
    async def scenario() -> list[list[int]]:
        stream = Stream()
        for offset in range(7):
            stream.channel.queue.put_nowait(Event(offset))
        batches = ready_batches(stream, size_max=3)
        seen = [offsets(await anext(batches)) for _ in range(3)]
        await batches.aclose()
        return seen

    assert run(scenario()) == [[0, 1, 2], [3, 4, 5], [6]]


def test_a_record_is_acked_only_when_the_runner_releases_it() -> None:
    async def scenario() -> tuple[int, int]:
        stream = Stream()
        event = Event(0)
        stream.channel.queue.put_nowait(event)
        batches = ready_batches(stream, size_max=10)
        [delivery] = await anext(batches)
        stream.channel.queue.put_nowait(Event(1))
        await anext(batches)  # taking the next batch drops the take's own reference of the first
        before_release = event.message.refcount
        delivery.ack()  # the runner releases it
        await batches.aclose()
        return before_release, event.message.refcount

    assert run(scenario()) == (1, 0)


def test_a_lingering_batch_takes_what_arrives_within_the_linger_and_closes_when_full() -> None:
    async def scenario() -> list[list[int]]:
        stream, seen = Stream(), []
        batches = ready_batches(stream, size_max=4, linger_seconds=0.05)
        stream.channel.queue.put_nowait(Event(0))
        taking = asyncio.ensure_future(anext(batches))
        await asyncio.sleep(0.01)  # the first event alone would be a batch without the linger
        stream.channel.queue.put_nowait(Event(1))
        seen.append(offsets(await taking))
        for offset in range(2, 8):  # a backlog fills a batch before the linger ends
            stream.channel.queue.put_nowait(Event(offset))
        seen.append(offsets(await asyncio.wait_for(anext(batches), timeout=1)))
        await batches.aclose()
        return seen

    assert run(scenario()) == [[0, 1], [2, 3, 4, 5]]
