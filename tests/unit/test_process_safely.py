"""The agents' failure policy: transient faults retry, a poison record is dead-lettered, none is dropped."""

import asyncio

from agents import stages
from pipeline.envelopes import Record
from pipeline.flow import BatchResult


def rec(offset: int) -> Record:
    return Record(topic="raw", partition=0, offset=offset, key=None, value=b"x%d" % offset)


def run(fn, records):  # type: ignore[no-untyped-def]
    return asyncio.run(stages.process_safely("test", records, fn))


def test_poison_record_is_dead_lettered_and_the_rest_processed() -> None:
    async def fn(records: list[Record]) -> BatchResult:
        if any(r.offset == 1 for r in records):
            raise ValueError("bug on record 1")
        result = BatchResult()
        result.count("ok")
        return result

    result = run(fn, [rec(0), rec(1), rec(2)])
    assert result.outcomes == {"ok": 2, "rejected": 1}
    [letter] = result.emits
    assert letter.topic_key == "deadletter" and letter.value == b"x1"
    assert dict(letter.headers)["hera-reason"] == b"POISON"


def test_transient_faults_never_use_up_a_records_attempts() -> None:
    calls = {"n": 0}

    async def fn(records: list[Record]) -> BatchResult:
        calls["n"] += 1
        if len(records) > 1:
            raise ValueError("the batch fails; records one by one")
        if calls["n"] < 2 + stages.POISON_ATTEMPTS_MAX + 2:
            raise ConnectionError("database unreachable")  # transient, more times than attempts
        result = BatchResult()
        result.count("ok")
        return result

    result = run(fn, [rec(0), rec(1)])
    assert result.outcomes == {"ok": 2}  # both handled, none dropped, none dead-lettered
    assert result.emits == []
