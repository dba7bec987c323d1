"""Prometheus metrics of a worker: what happened to each event, how fast, and what is waiting.

Names follow Prometheus conventions (``hera_`` prefix, base units last, ``_total`` on counters).
Every alert in ``infra/prometheus/`` and every panel in ``infra/grafana/`` reads only these (a test
parses both and checks each metric name against this registry).

    hera_events_total{outcome}             one per event, at its final outcome: posted, review,
                                           rejected (dead-lettered), duplicate
    hera_events_deferred_total             events parked over their organisation's rate limit
    hera_dead_letters_total{reason}        every dead letter, events and reviewer decisions alike
    hera_review_decisions_total{outcome}   reviewer decisions applied (posted, duplicate, rejected)
    hera_entries_posted_total              journal entries committed to the ledger (by any path)
    hera_event_latency_seconds             raw record timestamp -> commit of its journal entry
    hera_batch_size / _duration_seconds    per stage
    hera_stage_retries_total{stage,kind}   transient (batch retried) / poison (one record retried)
    hera_consumer_lag_messages{topic,partition}   high watermark - committed offset, per partition
    hera_consumer_committed_offset{topic,partition}   moves while the partition is being consumed
    hera_review_queue_depth / hera_review_oldest_age_seconds   open review items (periodic query)
    hera_circuit_breaker_state{name}       0 closed, 1 half-open, 2 open
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import HistogramMetricFamily

from pipeline.domain.outcomes import REJECTION_PRECEDENCE, Outcome

FINAL_OUTCOMES = (Outcome.POSTED, Outcome.REVIEW, Outcome.REJECTED, Outcome.DUPLICATE)
DEAD_LETTER_REASONS = frozenset(str(r) for r in REJECTION_PRECEDENCE)
DECISION_STAGES = frozenset({"review"})  # stages whose records are reviewer decisions, not events
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

class BatchHistogram:
    """A histogram fed a batch of values at a time (a registered collector): a thousand latencies
    are binned in one pass and added under one lock, where ``Histogram.observe`` costs several
    microseconds per value on the worker's per-event path."""

    def __init__(self, name: str, documentation: str, buckets: Iterable[float], registry: Any = REGISTRY) -> None:
        self.name, self.documentation = name, documentation
        self._bounds = sorted(float(b) for b in buckets)
        self._counts = [0] * (len(self._bounds) + 1)  # the last one: above every bound (+Inf only)
        self._sum = 0.0
        self._lock = threading.Lock()
        registry.register(self)

    def observe_many(self, values: Iterable[float]) -> None:
        counts, total, bounds = [0] * len(self._counts), 0.0, self._bounds
        for value in values:
            counts[bisect_left(bounds, value)] += 1  # first bound >= value: Prometheus buckets are "le"
            total += value
        with self._lock:
            self._counts = [a + b for a, b in zip(self._counts, counts, strict=True)]
            self._sum += total

    def collect(self) -> Iterator[HistogramMetricFamily]:
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative, buckets = 0, []
        for bound, n in zip([*self._bounds, float("inf")], counts, strict=True):
            cumulative += n
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
        yield HistogramMetricFamily(self.name, self.documentation, buckets=buckets, sum_value=total)


EVENTS = Counter("hera_events", "Events by final outcome, counted once per event", ["outcome"])
DEFERRED = Counter("hera_events_deferred", "Events parked over their organisation's rate limit")
DEAD_LETTERS = Counter("hera_dead_letters", "Dead letters written, by reason", ["reason"])
REVIEW_DECISIONS = Counter("hera_review_decisions", "Reviewer decisions applied, by outcome", ["outcome"])
ENTRIES_POSTED = Counter("hera_entries_posted", "Journal entries committed to the ledger")
EVENT_LATENCY = BatchHistogram("hera_event_latency_seconds",
                               "From the raw record's timestamp to the commit of its journal entry", LATENCY_BUCKETS)
BATCH_SECONDS = Histogram("hera_batch_duration_seconds", "Time to process one batch", ["stage"],
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
BATCH_SIZE = Histogram("hera_batch_size", "Records per batch", ["stage"],
                       buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000))
RETRIES = Counter("hera_stage_retries", "Retries after a failure: transient (the batch) or poison (one record)",
                  ["stage", "kind"])
POISON = Counter("hera_poison_events", "Records dead-lettered after repeated processing failures", ["stage"])
LAST_BATCH = Gauge("hera_stage_last_batch_timestamp_seconds", "Unix time of the last batch per stage", ["stage"])
CONSUMER_LAG = Gauge("hera_consumer_lag_messages", "High watermark minus committed offset, per assigned partition",
                     ["topic", "partition"])
COMMITTED_OFFSET = Gauge("hera_consumer_committed_offset", "Offset committed (next to read), per assigned partition",
                         ["topic", "partition"])
REVIEW_DEPTH = Gauge("hera_review_queue_depth", "Open items in the review queue (all organisations)")
REVIEW_OLDEST_AGE = Gauge("hera_review_oldest_age_seconds", "Age of the oldest open review item (0 when none)")
BREAKER_STATE = Gauge("hera_circuit_breaker_state", "Circuit breaker state: 0 closed, 1 half-open, 2 open",
                      ["name"])
BREAKER_OPENED = Counter("hera_circuit_breaker_opened", "Times a circuit breaker opened", ["name"])
WORKER_UP = Gauge("hera_worker_started_timestamp_seconds", "Unix time the worker finished starting (0 = starting)")
LAG = LAST_BATCH  # the old name of the last-batch gauge, kept for callers not yet moved


def record_outcomes(stage: str, outcomes: Mapping[str, int], reasons: Mapping[str, int]) -> None:
    """Count a published batch's outcomes. Interim steps (``validated``, ``classified``,
    ``readmitted``) are not outcomes; a stage of reviewer decisions counts decisions, not events."""
    decisions = stage in DECISION_STAGES
    for outcome, n in outcomes.items():
        if outcome == Outcome.DEFERRED and not decisions:
            DEFERRED.inc(n)
        elif outcome in FINAL_OUTCOMES:
            (REVIEW_DECISIONS if decisions else EVENTS).labels(outcome).inc(n)
    for reason, n in reasons.items():
        if reason in DEAD_LETTER_REASONS:
            DEAD_LETTERS.labels(reason).inc(n)


def observe_batch(stage: str, size: int, seconds: float) -> None:
    BATCH_SECONDS.labels(stage).observe(seconds)
    BATCH_SIZE.labels(stage).observe(size)
    LAST_BATCH.labels(stage).set_to_current_time()


def observe_committed(raw_timestamps_ms: Iterable[int | None], now: float | None = None) -> None:
    """End-to-end latency of entries just committed, from their raw records' timestamps."""
    now = time.time() if now is None else now
    EVENT_LATENCY.observe_many(max(0.0, now - ts / 1000) for ts in raw_timestamps_ms if ts)


def set_consumer_lag(lags: Mapping[tuple[str, int], tuple[int, int]]) -> None:
    """Replace the lag and committed-offset gauges with ``lags`` ((topic, partition) -> (lag,
    committed offset)): partitions no longer assigned here disappear instead of going stale."""
    current = {(topic, str(partition)): figures for (topic, partition), figures in lags.items()}
    for gauge in (CONSUMER_LAG, COMMITTED_OFFSET):
        for labels in _label_sets(gauge):
            if labels not in current:
                gauge.remove(*labels)
    for (topic, partition), (lag, committed) in current.items():
        CONSUMER_LAG.labels(topic, partition).set(max(0, lag))
        COMMITTED_OFFSET.labels(topic, partition).set(committed)


def set_review_backlog(depth: int, oldest_age_seconds: float | None) -> None:
    REVIEW_DEPTH.set(depth)
    REVIEW_OLDEST_AGE.set(max(0.0, oldest_age_seconds or 0.0))


def _label_sets(metric: Any) -> list[tuple[str, ...]]:
    return [tuple(sample.labels[n] for n in metric._labelnames)
            for family in metric.collect() for sample in family.samples]


def exported_names(registry: Any = None) -> set[str]:
    """Every sample name this process exports (``hera_events_total``, ``…_bucket`` …), whether or not
    a labelled metric has a child yet: what dashboards and alerts may name."""
    from prometheus_client import REGISTRY

    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",),
                "summary": ("_count", "_sum", "")}
    names: set[str] = set()
    for family in (registry or REGISTRY).collect():
        names.update(family.name + s for s in suffixes.get(family.type, ("",)))
    return names
