"""Poison handling (agents/failure.py): one message that breaks a step is dead-lettered with a reason,
the rest of the batch goes on; transient faults are retried (boundedly), never dead-lettered."""

from __future__ import annotations

import asyncio

import pytest

from agents.failure import isolate, record_letter
from pipeline.envelopes import Record
from pipeline.flow import Staged
from pipeline.resilience import retry


def rec(offset: int) -> Record:
    return Record(topic="raw", partition=0, offset=offset, key=None, value=b"x%d" % offset)


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    async def instant(_: float) -> None:
        return None

    monkeypatch.setattr(retry.RetryPolicy, "__init__", _with_sleep(retry.RetryPolicy.__init__, instant))


def _with_sleep(init, sleep):  # type: ignore[no-untyped-def]
    def patched(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("sleep", sleep)
        init(self, *args, **kwargs)
    return patched


def run(fn, records):  # type: ignore[no-untyped-def]
    return asyncio.run(isolate("test", records, fn, record_letter))


def test_poison_record_is_dead_lettered_and_the_rest_processed() -> None:
    async def fn(records: list[Record]) -> Staged:
        if any(r.offset == 1 for r in records):
            raise ValueError("bug on record 1")
        staged = Staged()
        staged.out.count("ok", None)
        return staged

    staged = run(fn, [rec(0), rec(1), rec(2)])
    assert staged.out.outcomes == {"ok": 2, "rejected": 1}
    [letter] = staged.out.emits
    assert letter.topic_key == "deadletter" and letter.value == b"x1"
    assert dict(letter.headers)["hera-reason"] == b"POISON"
    assert b"bug on record 1" in dict(letter.headers)["hera-detail"]


def test_transient_faults_are_retried_and_never_dead_letter() -> None:
    calls = {"n": 0}

    async def fn(records: list[Record]) -> Staged:
        calls["n"] += 1
        if calls["n"] < 4:
            raise ConnectionError("database unreachable")
        staged = Staged()
        staged.out.count("ok", None)
        return staged

    staged = run(fn, [rec(0), rec(1)])
    assert staged.out.outcomes == {"ok": 1} and staged.out.emits == []
    assert calls["n"] == 4


def test_transient_faults_beyond_the_bound_are_raised_not_dead_lettered() -> None:
    async def fn(records: list[Record]) -> Staged:
        raise ConnectionError("database gone")

    with pytest.raises(ConnectionError):
        run(fn, [rec(0)])


def test_retries_do_not_give_up_while_the_database_breaker_is_half_open(monkeypatch: pytest.MonkeyPatch) -> None:
    # a fault that lands just as the breaker turns half-open (reset time passed, no trial call yet)
    from pipeline.resilience import breaker as breakers
    from pipeline.resilience.retry import RetryPolicy

    db = breakers.database()
    monkeypatch.setattr(type(db), "state", property(lambda self: "half-open"))
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 5:
            raise ValueError("not a transient fault by type; the breaker is what makes it one")
        return "done"

    async def no_sleep(_: float) -> None:
        return None

    policy = RetryPolicy("t", attempts_max=2, elapsed_seconds_max=0.0, sleep=no_sleep)
    assert asyncio.run(policy.call(flaky)) == "done" and calls == 5
