"""Batches from a Faust stream that close as soon as nothing more is buffered, or at a size cap.

Faust's ``Stream.take_events(max, within)`` waits up to ``within`` for a batch to fill: an idle
worker holds every event for that long. Here a batch closes the moment the stream's queue is empty
(the fetcher has delivered everything it has), so an event that arrives alone is handled alone and
at once. Under backlog the queue is never empty while a batch is being handled: the records that
arrived meanwhile are all taken next, up to ``size_max``, so batches grow with the load and the
per-batch costs (one database transaction, one produce round trip) are shared by more records.

The structure is ``take_events``' own (faust-streaming 0.15.3): a stream processor appends each
event to the buffer and blocks while the consumer handles the previous one, and acks are manual.
Each record is referenced once more (``Message.incref``) until the runner releases it: when the
worker stops, Faust cancels the agent and acks what it took on its way out; the extra reference
keeps those records uncommitted, so they are redelivered to the partition's next owner.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from agents.runner import Delivery
from pipeline.envelopes import Record

STOP_POLL_SECONDS = 1.0  # how often an idle take looks whether the stream is stopping


def to_record(event: Any) -> Record:
    msg = event.message
    return Record(topic=msg.topic, partition=msg.partition, offset=msg.offset, key=msg.key,
                  value=msg.value, timestamp_ms=int(msg.timestamp * 1000) if msg.timestamp else None)


def delivery(event: Any) -> Delivery:
    event.message.incref()
    return Delivery(to_record(event), event.ack)


async def ready_batches(stream: Any, size_max: int, linger_seconds: float = 0.0) -> AsyncIterator[list[Delivery]]:
    """Batches of at most ``size_max`` deliveries, each closed when the stream has nothing buffered;
    with ``linger_seconds``, a batch stays open that long after its first record (or until full), for
    agents whose records nobody waits for, where fewer, larger batches mean fewer transactions."""
    events: list[Any] = []
    ready = asyncio.Event()
    full = asyncio.Event()
    consumed = asyncio.Event()
    consuming: asyncio.Future[None] | None = None
    queue_empty = stream.channel.queue.empty

    async def add_to_buffer(value: Any) -> Any:
        nonlocal consuming
        if consuming is not None:  # the previous batch is being handed over: wait until it is
            try:
                await consuming
            finally:
                consuming = None
        event = stream.current_event
        if event is None:
            raise RuntimeError("ready_batches: the stream has no current event")
        events.append(event)
        if len(events) >= size_max:
            ready.set()
            full.set()
            consumed.clear()
            await stream.wait(consumed)  # never more than size_max in one batch
        elif queue_empty():
            ready.set()
        return value

    stream.enable_acks = False  # acked by the runner once released (and by us on the way out)
    stream.add_processor(add_to_buffer)
    stream._enable_passive(aiter(stream.channel))
    while not stream.should_stop:
        await stream.wait_for_stopped(ready, timeout=STOP_POLL_SECONDS)
        if not events:
            ready.clear()
            continue
        if linger_seconds > 0 and not full.is_set():
            try:
                await asyncio.wait_for(full.wait(), timeout=linger_seconds)
            except TimeoutError:
                pass
        consuming = asyncio.get_running_loop().create_future()
        try:
            yield [delivery(e) for e in events]
        finally:
            taken = list(events)
            events.clear()
            for event in taken:
                await stream.ack(event)  # drops take's own reference; the runner's stays until release
            if not consuming.done():
                consuming.set_result(None)
            ready.clear()
            full.clear()
            consumed.set()
