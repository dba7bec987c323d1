"""Faust's per-event machinery, made cheaper (faust-streaming 0.15.3; the measured effect of each step,
with ``benchmarks/faust_bench.py``, is in BENCHMARKS.md "Faust worker").

1. ``Consumer._drain_messages`` handed every fetched record to the conductor through
   ``Service.wait_first(callback(message), suspend_flow.wait())``: four tasks, an
   ``asyncio.wait`` and three cancellations per record, although the callback (putting the event
   on the stream queues) almost never has to wait. Here the callback is run inline first; only if
   it does have to wait (a full stream queue) is it finished under the same ``wait_first`` as
   before, and with flow suspended it goes through ``wait_first`` from the start.
2. The Cython stream iterator awaited ``asyncio.sleep(0)`` before every event: a full event-loop
   pass with an epoll call per event. It now yields to the loop every 64th event.
3. Faust's sensor hooks per message and per send (``on_message_in``, ``on_stream_event_in`` …) feed
   the Monitor's in-process statistics, which this worker does not use (its metrics are
   Prometheus counters per batch): they are no-ops on this app's sensor delegate.
4. ``App.create_event`` and ``ProducerBuffer.wait_until_ebb`` looked settings up per message.

``install(app)`` applies 2 and the class-level part of 1 and 4 once per process, and 3 and 4 to
``app``; with another Faust version it changes nothing (1 is a copy of that version's function)
and says so. ``HERA_FAUST_SPEEDUPS=0`` turns all of it off.
"""

from __future__ import annotations

import asyncio
import logging
import types
from collections.abc import AsyncIterator, Generator
from typing import Any, cast

log = logging.getLogger("hera.faust_speedups")

FAUST_VERSION = "0.15.3"
STREAM_YIELD_EVERY = 64
SENSOR_HOOKS = ("on_message_in", "on_stream_event_in", "on_stream_event_out", "on_message_out",
                "on_topic_buffer_full", "on_send_initiated", "on_send_completed", "on_send_error")

_installed = False


class _Resume:
    """Awaiting it continues a coroutine that has already run up to its first suspension
    (``first``, the future it is waiting for): exceptions and cancellation are passed into it."""

    __slots__ = ("coro", "first")

    def __init__(self, coro: Any, first: Any) -> None:
        self.coro, self.first = coro, first

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, pending = self.coro, self.first
        while True:
            try:
                sent = yield pending
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # CancelledError and the like go into the coroutine
                try:
                    pending = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    pending = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def _deliver(consumer: Any, callback: Any, message: Any) -> None:
    """``await consumer.wait_first(callback(message), consumer.suspend_flow.wait())``, without the
    tasks when the callback completes without waiting."""
    if consumer.suspend_flow.is_set():
        await consumer.wait_first(callback(message), consumer.suspend_flow.wait())
        return
    coro = callback(message)
    try:
        first = coro.send(None)
    except StopIteration:
        return
    await consumer.wait_first(_Resume(coro, first), consumer.suspend_flow.wait())


async def _drain_messages(self: Any, fetcher: Any) -> None:
    """faust-streaming 0.15.3 ``Consumer._drain_messages``, the callback delivered by ``_deliver``."""
    from faust.transport.consumer import CONSUMER_FETCHING

    callback = self.callback
    getmany = self.getmany
    consumer_should_stop = self._stopped.is_set
    fetcher_should_stop = fetcher._stopped.is_set
    get_read_offset = self._read_offset.__getitem__
    set_read_offset = self._read_offset.__setitem__
    set_flag = self.diag.set_flag
    unset_flag = self.diag.unset_flag
    commit_every = self._commit_every
    acks_enabled_for = self.app.topics.acks_enabled_for
    yield_every = 100
    num_since_yield = 0
    sleep = asyncio.sleep
    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            set_flag(CONSUMER_FETCHING)
            ait = cast(AsyncIterator[Any], getmany(timeout=1.0))
            # Sleeping because sometimes getmany is called in a loop never releasing to the event loop
            await self.sleep(0)
            if not self.should_stop:
                async for tp, message in ait:
                    num_since_yield += 1
                    if num_since_yield > yield_every:
                        await sleep(0)
                        num_since_yield = 0
                    offset = message.offset
                    r_offset = get_read_offset(tp)
                    if r_offset is None or offset >= r_offset:
                        gap = offset - (r_offset or 0)
                        if gap > 1 and r_offset and acks_enabled_for(message.topic):
                            await self._add_gap(tp, r_offset + 1, offset)
                        if commit_every is not None and self._n_acked >= commit_every:
                            self._n_acked = 0
                            await self.commit()
                        await _deliver(self, callback, message)
                        set_read_offset(tp, offset)
                    else:
                        self.log.dev("DROPPED MESSAGE ROFF %r: k=%r v=%r", offset, message.key, message.value)
                unset_flag(CONSUMER_FETCHING)
    except self.consumer_stopped_errors:
        if self.transport.app.should_stop:
            self.log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if self.transport.app.should_stop:
            self.log.info("Consumer shutting down for user cancel.")
            return
        raise
    except Exception as exc:
        self.log.exception("Drain messages raised: %r", exc)
        raise
    finally:
        unset_flag(CONSUMER_FETCHING)


def _sparse_sleep(every: int) -> Any:
    """``asyncio.sleep`` that, for a zero delay, yields to the event loop only every ``every``-th call."""
    count = 0

    @types.coroutine
    def sleep(delay: float = 0, result: Any = None) -> Generator[Any, None, Any]:
        nonlocal count
        if delay:
            return (yield from asyncio.sleep(delay, result).__await__())
        count += 1
        if count >= every:
            count = 0
            yield  # a bare yield is what asyncio.sleep(0) does
        return result

    return sleep


def enabled() -> bool:
    """Only on the Faust version this was written for (``agents.patches`` refuses any other first)."""
    import faust

    return bool(faust.__version__ == FAUST_VERSION)


def install(app: Any) -> bool:
    """Apply the speed-ups to Faust (once) and to ``app``; call right after creating the app, before
    its agents and topics. Returns whether they were applied."""
    global _installed
    if not enabled():
        return False
    if not _installed:
        import faust._cython.streams as cython_streams  # type: ignore[import-not-found]
        from faust.transport.consumer import Consumer
        from faust.transport.producer import ProducerBuffer

        Consumer._drain_messages = _drain_messages  # type: ignore[method-assign]
        cython_streams.sleep = _sparse_sleep(STREAM_YIELD_EVERY)
        wait_until_ebb = ProducerBuffer.wait_until_ebb

        async def ebb_when_full(self: Any) -> None:
            if len(self.pending._queue) > self.max_messages:
                await wait_until_ebb(self)

        if not app.conf.producer_threaded:
            ProducerBuffer.wait_until_ebb = ebb_when_full  # type: ignore[method-assign]
        _installed = True
    event_type = app.conf.Event
    app.create_event = lambda key, value, headers, message: event_type(app, key, value, headers, message)
    for hook in SENSOR_HOOKS:
        setattr(app.sensors, hook, _no_op)
    return True


def _no_op(*_: Any, **__: Any) -> None:
    return None


__all__ = ["install"]
