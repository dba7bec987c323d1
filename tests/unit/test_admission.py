"""Admission rules, one at a time, with explicit times: dedupe, TTL, rate limit, parking order, fairness."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipeline.admission.rate_limit import RateLimit
from pipeline.admission.rules import (
    BACKLOG_TABLE,
    BATCH_SIZE_MAX,
    BUCKET_TABLE,
    DEDUPE_TABLE,
    DEDUPE_TTL_SECONDS,
    Decisions,
    Update,
    Verdict,
    decide,
    dedupe_key,
    readmit,
)
from pipeline.domain.errors import InvariantViolation
from pipeline.domain.outcomes import Reason

A, B = "org-a", "org-b"
DEFAULT = RateLimit(per_minute=100, burst=100)
A_IS_NOISY = {A: RateLimit(per_minute=60, burst=1), B: DEFAULT}


class Tables:
    """The three tables as plain dicts, written the way an agent would write the updates."""

    def __init__(self, limits: dict[str, RateLimit] | None = None) -> None:
        self.data: dict[str, dict[str, Any]] = {DEDUPE_TABLE: {}, BUCKET_TABLE: {}, BACKLOG_TABLE: {}}
        self.limits = limits or {}

    def limit_of(self, org: str) -> RateLimit:
        return self.limits.get(org, DEFAULT)

    def kw(self) -> dict[str, Any]:
        return {"dedupe": self.data[DEDUPE_TABLE], "buckets": self.data[BUCKET_TABLE],
                "backlog": self.data[BACKLOG_TABLE], "limit_of": self.limit_of}

    def decide(self, items: list[tuple[str, str, str, int]], now: float, **extra: Any) -> Decisions:
        return self.apply(decide(items, now=now, **self.kw(), **extra))

    def readmit(self, parked: list[tuple[str, str, str, int, int]], now: float, **extra: Any) -> Decisions:
        return self.apply(readmit(parked, now=now, **self.kw(), **extra))

    def apply(self, result: Decisions) -> Decisions:
        for table, key, value, _ in result.updates:
            self.data[table][key] = value
        return result

    def backlog(self, org: str) -> tuple[int, int]:
        queue = self.data[BACKLOG_TABLE].get(org, {"head": 0, "tail": 0})
        return queue["head"], queue["tail"]


def ev(org: str, n: int, fp: str = "fp", partition: int = 0) -> tuple[str, str, str, int]:
    return (org, f"e{n}", fp, partition)


def verdicts(result: Decisions) -> list[str]:
    return [a.verdict.value for a in result.admissions]


def back(result: Decisions, index: int) -> tuple[str, str, str, int, int]:
    """The parked message an agent would produce for the deferred admission at ``index``."""
    admission = result.admissions[index]
    assert admission.verdict is Verdict.DEFER and admission.seq is not None
    return (*admission.item, admission.seq)


# ---------------------------------------------------------------- dedupe

def test_a_new_event_is_admitted_and_recorded_on_its_partition() -> None:
    tables = Tables()
    result = tables.decide([ev(A, 1, partition=3)], now=10.0)
    assert verdicts(result) == ["admit"]
    assert Update(DEDUPE_TABLE, dedupe_key(A, "e1"), {"fp": "fp", "at": 10.0}, 3) in result.updates
    assert {u.table for u in result.updates} == {DEDUPE_TABLE, BUCKET_TABLE}
    assert all(u.partition == 3 for u in result.updates)


def test_an_exact_redelivery_is_a_duplicate_and_spends_no_token() -> None:
    tables = Tables({A: RateLimit(per_minute=1, burst=1)})
    tables.decide([ev(A, 1)], now=0.0)
    result = tables.decide([ev(A, 1)], now=1.0)
    assert verdicts(result) == ["duplicate"] and result.updates == []
    assert result.admissions[0].reason is None


def test_same_id_different_content_is_a_conflict() -> None:
    tables = Tables()
    tables.decide([ev(A, 1, "fp1")], now=0.0)
    result = tables.decide([ev(A, 1, "fp2")], now=1.0)
    assert verdicts(result) == ["conflict"]
    assert result.admissions[0].reason is Reason.DUPLICATE_CONFLICT


def test_the_key_is_per_organisation() -> None:
    tables = Tables()
    assert verdicts(tables.decide([ev(A, 1, "x"), ev(B, 1, "y")], now=0.0)) == ["admit", "admit"]


def test_a_record_older_than_the_ttl_counts_as_absent() -> None:
    tables = Tables()
    tables.decide([ev(A, 1, "fp1")], now=0.0)
    assert verdicts(tables.decide([ev(A, 1, "fp2")], now=DEDUPE_TTL_SECONDS - 1)) == ["conflict"]
    result = tables.decide([ev(A, 1, "fp2")], now=DEDUPE_TTL_SECONDS)
    assert verdicts(result) == ["admit"]  # the database's unique constraint is the guard from here
    assert tables.data[DEDUPE_TABLE][dedupe_key(A, "e1")] == {"fp": "fp2", "at": DEDUPE_TTL_SECONDS}


def test_a_custom_ttl() -> None:
    tables = Tables()
    tables.decide([ev(A, 1)], now=0.0)
    assert verdicts(tables.decide([ev(A, 1)], now=59.0, ttl_seconds=60.0)) == ["duplicate"]
    assert verdicts(tables.decide([ev(A, 1)], now=60.0, ttl_seconds=60.0)) == ["admit"]


def test_duplicates_inside_one_batch_are_judged_against_the_first() -> None:
    tables = Tables()
    result = tables.decide([ev(A, 1, "fp1"), ev(A, 1, "fp1"), ev(A, 1, "fp2")], now=0.0)
    assert verdicts(result) == ["admit", "duplicate", "conflict"]


def test_duplicates_of_an_event_parked_in_the_same_batch() -> None:
    tables = Tables(A_IS_NOISY)
    result = tables.decide([ev(A, 1), ev(A, 2, "fp"), ev(A, 2, "fp"), ev(A, 2, "other")], now=0.0)
    assert verdicts(result) == ["admit", "defer", "duplicate", "conflict"]
    assert tables.backlog(A) == (0, 1)  # only one of them is parked


def test_a_deferred_event_is_not_recorded_as_handled_until_admitted() -> None:
    tables = Tables(A_IS_NOISY)
    first = tables.decide([ev(A, 1), ev(A, 2)], now=0.0)
    assert tables.data[DEDUPE_TABLE][dedupe_key(A, "e2")] == {"fp": "fp", "at": 0.0, "seq": 0}  # parked only
    again = tables.decide([ev(A, 2)], now=0.5)  # redelivered while parked: parked too, judged later
    assert verdicts(again) == ["defer"] and again.admissions[0].seq == 1
    assert verdicts(tables.readmit([back(first, 1)], now=1.0)) == ["admit"]
    assert verdicts(tables.readmit([back(again, 0)], now=1.0)) == ["duplicate"]
    assert tables.backlog(A) == (2, 2)


# ---------------------------------------------------------------- crash-redelivery (same record again)

def test_the_record_that_admitted_an_event_is_admitted_again_after_a_crash() -> None:
    tables = Tables()
    tables.decide([ev(A, 1)], now=0.0, sources=["raw/0/7"])
    # the worker died before its batch was acked: the same record is unfinished work (posting is
    # idempotent), while another record with the same content is a duplicate
    assert verdicts(tables.decide([ev(A, 1)], now=1.0, sources=["raw/0/7"])) == ["admit"]
    assert verdicts(tables.decide([ev(A, 1)], now=2.0, sources=["raw/1/9"])) == ["duplicate"]


def test_the_record_that_parked_an_event_gets_its_own_ticket_back_after_a_crash() -> None:
    tables = Tables(A_IS_NOISY)
    first = tables.decide([ev(A, 1), ev(A, 2), ev(A, 3)], now=0.0, sources=["r/0/1", "r/0/2", "r/0/3"])
    assert [a.seq for a in first.admissions] == [None, 0, 1] and tables.backlog(A) == (0, 2)
    # crash before the parked messages were produced: the batch comes back, the tickets are reissued
    again = tables.decide([ev(A, 1), ev(A, 2), ev(A, 3)], now=0.1, sources=["r/0/1", "r/0/2", "r/0/3"])
    assert verdicts(again) == ["admit", "defer", "defer"]
    assert [a.seq for a in again.admissions] == [None, 0, 1] and tables.backlog(A) == (0, 2)  # no new ticket
    # so the queue moves as soon as quota frees, not after the gap timeout
    assert verdicts(tables.readmit([back(again, 1)], now=1.0, sources=["r/0/2"])) == ["admit"]
    assert verdicts(tables.readmit([back(again, 2)], now=2.0, sources=["r/0/3"])) == ["admit"]
    assert tables.backlog(A) == (2, 2)


def test_a_copy_of_a_parked_event_from_another_record_queues_and_is_judged_a_duplicate() -> None:
    tables = Tables(A_IS_NOISY)
    first = tables.decide([ev(A, 1), ev(A, 2)], now=0.0, sources=["r/0/1", "r/0/2"])
    copy = tables.decide([ev(A, 2)], now=0.5, sources=["r/1/5"])
    assert verdicts(copy) == ["defer"] and copy.admissions[0].seq == 1
    assert verdicts(tables.readmit([back(first, 1)], now=1.0, sources=["r/0/2"])) == ["admit"]
    assert verdicts(tables.readmit([back(copy, 0)], now=2.0, sources=["r/1/5"])) == ["duplicate"]


# ---------------------------------------------------------------- rate limit and parking

def test_burst_then_the_101st_is_deferred_and_admitted_after_point_six_seconds() -> None:
    tables = Tables()
    result = tables.decide([ev(A, n) for n in range(101)], now=0.0)
    assert verdicts(result) == ["admit"] * 100 + ["defer"]
    parked = result.admissions[100]
    assert (parked.not_before, parked.seq) == (0.6, 0)
    assert [u.table for u in result.updates].count(BUCKET_TABLE) == 1  # coalesced: last value wins
    assert verdicts(tables.readmit([back(result, 100)], now=0.5)) == ["defer"]
    assert tables.backlog(A) == (0, 1)  # deferring again does not grow the queue
    assert verdicts(tables.readmit([back(result, 100)], now=0.6)) == ["admit"]
    assert tables.backlog(A) == (1, 1)
    assert dedupe_key(A, "e100") in tables.data[DEDUPE_TABLE]


def test_not_before_follows_the_place_in_line() -> None:
    tables = Tables(A_IS_NOISY)  # one per second, burst 1
    result = tables.decide([ev(A, n) for n in range(4)], now=0.0)
    assert [(a.verdict.value, a.not_before, a.seq) for a in result.admissions] == [
        ("admit", None, None), ("defer", 1.0, 0), ("defer", 2.0, 1), ("defer", 3.0, 2)]


def test_while_events_are_parked_new_ones_queue_behind_them() -> None:
    tables = Tables({A: RateLimit(per_minute=60, burst=3)})
    first = tables.decide([ev(A, n) for n in range(5)], now=0.0)
    assert verdicts(first) == ["admit"] * 3 + ["defer"] * 2
    later = tables.decide([ev(A, 5)], now=10.0)  # tokens are back, but two are waiting
    assert verdicts(later) == ["defer"] and later.admissions[0].seq == 2
    # the deferred consumer sees them out of order: only the head may enter
    out_of_order = tables.readmit([back(later, 0), back(first, 4), back(first, 3)], now=10.0)
    assert verdicts(out_of_order) == ["defer", "defer", "admit"]
    in_order = tables.readmit([back(first, 4), back(later, 0)], now=10.0)
    assert verdicts(in_order) == ["admit", "admit"]
    assert tables.backlog(A) == (3, 3)
    assert verdicts(tables.decide([ev(A, 6)], now=61.0)) == ["admit"]  # queue empty: straight in


def test_a_duplicate_at_the_head_leaves_the_queue_without_a_token() -> None:
    tables = Tables(A_IS_NOISY)
    first = tables.decide([ev(A, 1), ev(A, 2)], now=0.0)
    again = tables.decide([ev(A, 2)], now=0.1)
    tables.readmit([back(first, 1)], now=1.0)  # spends the only token
    result = tables.readmit([back(again, 0)], now=1.0)
    assert verdicts(result) == ["duplicate"]
    assert tables.backlog(A) == (2, 2)


def test_a_stale_ticket_is_judged_by_dedupe_and_never_moves_the_queue() -> None:
    tables = Tables(A_IS_NOISY)
    first = tables.decide([ev(A, 1), ev(A, 2), ev(A, 3)], now=0.0)
    tables.readmit([back(first, 1)], now=1.0)
    redelivered = tables.readmit([back(first, 1)], now=1.5)
    assert verdicts(redelivered) == ["duplicate"] and redelivered.updates == []
    assert tables.backlog(A) == (1, 2)


def test_a_ticket_never_issued_is_a_bug() -> None:
    tables = Tables()
    with pytest.raises(InvariantViolation):
        tables.readmit([(A, "e1", "fp", 0, 0)], now=0.0)


def test_a_lost_head_is_skipped_after_the_gap_timeout() -> None:
    tables = Tables(A_IS_NOISY)
    first = tables.decide([ev(A, 1), ev(A, 2), ev(A, 3)], now=0.0)  # tickets 0 and 1
    assert verdicts(tables.readmit([back(first, 2)], now=599.0)) == ["defer"]
    result = tables.readmit([back(first, 2)], now=600.0)  # ticket 0 never came back
    assert verdicts(result) == ["admit"]
    assert tables.backlog(A) == (2, 2)
    late = tables.readmit([back(first, 1)], now=700.0)  # if it does come back, it is not lost
    assert verdicts(late) == ["admit"]


def test_the_clock_going_back_grants_no_tokens() -> None:
    tables = Tables(A_IS_NOISY)
    tables.decide([ev(A, 1)], now=100.0)
    assert verdicts(tables.decide([ev(A, 2)], now=50.0)) == ["defer"]


# ---------------------------------------------------------------- fairness, limits, shapes

def test_a_noisy_organisation_does_not_slow_another() -> None:
    tables = Tables(A_IS_NOISY)
    noisy = [ev(A, n) for n in range(50)]
    quiet = [ev(B, n) for n in range(5)]
    mixed = tables.decide(noisy + quiet, now=0.0)
    assert verdicts(mixed)[50:] == ["admit"] * 5
    assert verdicts(mixed)[:50] == ["admit"] + ["defer"] * 49
    assert tables.backlog(B) == (0, 0)


def test_limits_are_per_organisation() -> None:
    tables = Tables({A: RateLimit(per_minute=60, burst=2), B: RateLimit(per_minute=60, burst=4)})
    result = tables.decide([ev(A, n) for n in range(5)] + [ev(B, n) for n in range(5)], now=0.0)
    assert result.counts() == {"admit": 6, "defer": 4}


def test_every_update_value_is_json() -> None:
    tables = Tables(A_IS_NOISY)
    result = tables.decide([ev(A, 1), ev(A, 2), ev(B, 1)], now=1.25)
    json.dumps([tuple(u) for u in result.updates])
    assert {u.table for u in result.updates} == {DEDUPE_TABLE, BUCKET_TABLE, BACKLOG_TABLE}


def test_the_batch_size_is_limited() -> None:
    with pytest.raises(InvariantViolation):
        decide([ev(A, 1)] * (BATCH_SIZE_MAX + 1), dedupe={}, buckets={}, backlog={},
               limit_of=lambda _: DEFAULT, now=0.0)
