"""Properties of admission over any sequence of (organisation, event, time) inputs.

A small simulation plays the agents: intake batches go through ``decide``; deferred events go to
an in-order deferred topic; drain passes feed it through ``readmit`` and append what is deferred
again to its tail, or come back in any order at all (the harshest wirings for ordering). Then:

* every item gets exactly one verdict, in input order;
* no organisation is ever admitted more than ``burst + rate × elapsed`` in any window, even
  when the clock steps back (elapsed is measured on the bucket's clock, which never does);
* each organisation's events are admitted in the order they first arrived;
* one organisation's traffic never changes another's verdicts;
* once drained, every event is accounted for: admitted once, or absorbed / dead-lettered;
* feeding the same batch twice admits nothing new;
* every state value is JSON.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.admission.rate_limit import RateLimit, admit, ready_at, to_micros
from pipeline.admission.rules import (
    BACKLOG_TABLE,
    BUCKET_TABLE,
    DEDUPE_TABLE,
    Decisions,
    Verdict,
    decide,
    readmit,
)

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ORGS = ["a", "b", "c"]
LIMITS = {"a": RateLimit(per_minute=60, burst=2), "b": RateLimit(per_minute=100, burst=5),
          "c": RateLimit(per_minute=7, burst=1)}

events = st.tuples(st.sampled_from(ORGS), st.integers(0, 12), st.sampled_from(["x", "x", "x", "y"]))
batches = st.lists(events, min_size=0, max_size=12)
# the clock may step back a little: a rebalance onto a host whose clock is behind
ops = st.lists(st.one_of(st.tuples(st.just("intake"), st.floats(-2, 5), batches),
                         st.tuples(st.just("drain"), st.floats(-2, 20), st.just([]))), max_size=12)


@dataclass
class Sim:
    limits: dict[str, RateLimit]
    tables: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {DEDUPE_TABLE: {}, BUCKET_TABLE: {}, BACKLOG_TABLE: {}})
    deferred: list[tuple[tuple[Any, ...], int]] = field(default_factory=list)  # (parked, arrival no.)
    admitted: list[tuple[str, int, int]] = field(default_factory=list)       # (org, at_us, arrival no.)
    verdicts: list[tuple[str, str]] = field(default_factory=list)           # (org, verdict), all of them
    arrivals: int = 0
    now: float = 0.0
    now_max: float = 0.0
    rng: random.Random | None = None  # if set, the deferred topic comes back in any order

    def kw(self) -> dict[str, Any]:
        return {"dedupe": self.tables[DEDUPE_TABLE], "buckets": self.tables[BUCKET_TABLE],
                "backlog": self.tables[BACKLOG_TABLE], "limit_of": self.limits.__getitem__, "now": self.now}

    def apply(self, result: Decisions, arrivals: list[int]) -> None:
        assert len(result.admissions) == len(arrivals)
        for table, key, value, _ in result.updates:
            json.dumps(value)
            self.tables[table][key] = value
        for admission, arrival in zip(result.admissions, arrivals, strict=True):
            org = admission.item.org_id
            self.verdicts.append((org, admission.verdict.value))
            if admission.verdict is Verdict.ADMIT:
                # a rate is measured on the bucket's own clock, which never steps back
                self.admitted.append((org, self.tables[BUCKET_TABLE][org]["at_us"], arrival))
            elif admission.verdict is Verdict.DEFER:
                assert admission.not_before is not None and admission.not_before >= self.now
                self.deferred.append(((*admission.item, admission.seq), arrival))

    def intake(self, batch: list[tuple[str, int, str]]) -> Decisions:
        items = [(org, f"e{n}", fp, 0) for org, n, fp in batch]
        arrivals = list(range(self.arrivals, self.arrivals + len(items)))
        self.arrivals += len(items)
        result = decide(items, **self.kw())
        assert [tuple(a.item) for a in result.admissions] == items
        self.apply(result, arrivals)
        return result

    def drain(self) -> None:
        pending, self.deferred = self.deferred, []
        if self.rng is not None:
            self.rng.shuffle(pending)
        if pending:
            self.apply(readmit([p for p, _ in pending], **self.kw()), [n for _, n in pending])

    def run(self, program: list[tuple[str, float, list[tuple[str, int, str]]]]) -> None:
        for kind, dt, batch in program:
            self.now += dt
            self.now_max = max(self.now_max, self.now)
            if kind == "intake":
                self.intake(batch)
            else:
                self.drain()

    def drain_all(self) -> None:
        for _ in range(1000):
            if not self.deferred:
                return
            self.now += 60.0
            self.now_max = max(self.now_max, self.now)
            self.drain()
        raise AssertionError("the deferred topic never drained")


@SETTINGS
@given(ops, st.none() | st.randoms(use_true_random=False))
def test_rate_order_and_accounting(program: list[Any], rng: random.Random | None) -> None:
    sim = Sim(LIMITS, rng=rng)
    sim.run(program)
    sim.drain_all()
    for org in ORGS:
        mine = [(t, n) for o, t, n in sim.admitted if o == org]
        limit = LIMITS[org]
        clock = [t for t, _ in mine]
        assert clock == sorted(clock) and all(t <= to_micros(sim.now_max) for t in clock)
        for (i, (t1, _)), (j, (t2, _)) in combinations(enumerate(mine), 2):
            # count <= burst + rate × elapsed, in exact integers (µs, per minute)
            assert (j - i + 1) * 60_000_000 <= limit.burst * 60_000_000 + limit.per_minute * (t2 - t1)
        arrivals = [n for _, n in mine]
        assert arrivals == sorted(arrivals), f"{org} admitted out of order"
        assert sim.tables[BACKLOG_TABLE].get(org, {"head": 0, "tail": 0})["head"] == \
            sim.tables[BACKLOG_TABLE].get(org, {"head": 0, "tail": 0})["tail"]
    finals = [v for _, v in sim.verdicts if v != "defer"]
    assert len(finals) == sim.arrivals  # every arrival ended exactly once
    keys = [(o, n) for o, _, n in sim.admitted]
    assert len(keys) == len(set(keys))
    json.dumps(sim.tables)


@SETTINGS
@given(ops)
def test_one_organisation_never_changes_another(program: list[Any]) -> None:
    together = Sim(LIMITS)
    together.run(program)
    alone = Sim(LIMITS)
    alone.run([(kind, dt, [e for e in batch if e[0] == "a"]) for kind, dt, batch in program])
    assert [v for o, v in together.verdicts if o == "a"] == [v for _, v in alone.verdicts]


@SETTINGS
@given(batches, st.floats(0, 3600), st.booleans())
def test_the_same_batch_twice_admits_nothing_new(batch: list[Any], later: float, roomy: bool) -> None:
    limits = {org: RateLimit(per_minute=1000, burst=100) for org in ORGS} if roomy else LIMITS
    sim = Sim(limits)
    first = sim.intake(batch)
    sim.now += later
    second = sim.intake(batch)
    admitted_fp = {(a.item.org_id, a.item.event_id): a.item.fingerprint
                   for a in first.admissions if a.verdict is Verdict.ADMIT}
    for admission in second.admissions:
        key = (admission.item.org_id, admission.item.event_id)
        assert admission.verdict is not Verdict.ADMIT
        if key in admitted_fp:
            expected = Verdict.DUPLICATE if admitted_fp[key] == admission.item.fingerprint else Verdict.CONFLICT
            assert admission.verdict is expected
    if roomy:
        assert {a.verdict for a in second.admissions} <= {Verdict.DUPLICATE, Verdict.CONFLICT}


@SETTINGS
@given(st.integers(1, 1000), st.integers(1, 1000), st.lists(st.floats(0, 1e9), min_size=1, max_size=20),
       st.integers(1, 50))
def test_ready_at_is_always_admissible(per_minute: int, burst: int, times: list[float], spend: int) -> None:
    limit = RateLimit(per_minute=per_minute, burst=burst)
    state = None
    for now in times:  # any order: the clock may go back
        for _ in range(spend):
            _, state, _ = admit(state, limit, now)
        at = ready_at(state, limit, now)
        assert admit(state, limit, at)[0] is True
        json.dumps(state)


@SETTINGS
@given(batches, st.floats(0, 60))
def test_a_batch_redelivered_after_a_crash_gets_the_same_verdicts_and_tickets(batch: list[Any], later: float) -> None:
    """The same records again (the worker died after its table writes, before the batch was acked):
    what was admitted is admitted again, what was parked keeps its ticket, no ticket is issued twice."""
    sim = Sim(LIMITS)
    items = [(org, f"e{n}", fp, 0) for org, n, fp in batch]
    sources = [f"raw/0/{i}" for i in range(len(items))]
    first = decide(items, sources=sources, **sim.kw())
    sim.apply(first, list(range(len(items))))
    backlog = json.dumps(sim.tables[BACKLOG_TABLE], sort_keys=True)
    sim.now += later
    second = decide(items, sources=sources, **sim.kw())
    for a, b in zip(first.admissions, second.admissions, strict=True):
        if a.verdict is Verdict.DEFER:
            assert (b.verdict, b.seq) == (Verdict.DEFER, a.seq)
        elif a.verdict is Verdict.ADMIT:
            assert b.verdict is Verdict.ADMIT
        else:
            assert b.verdict is a.verdict
    sim.apply(second, list(range(len(items))))
    assert json.dumps(sim.tables[BACKLOG_TABLE], sort_keys=True) == backlog  # tails unchanged
