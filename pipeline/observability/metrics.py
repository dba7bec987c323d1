"""Prometheus metrics (names follow Prometheus conventions: ``hera_`` prefix, units last, _total)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter("hera_events_total", "Events handled, by stage and outcome", ["stage", "outcome"])
REJECTIONS = Counter("hera_rejections_total", "Dead-lettered or reviewed events, by stage and reason",
                     ["stage", "reason"])
BATCH_SECONDS = Histogram("hera_batch_duration_seconds", "Time to process one batch", ["stage"],
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
BATCH_SIZE = Histogram("hera_batch_size", "Records per batch", ["stage"],
                       buckets=(1, 10, 50, 100, 250, 500, 1000, 2500))
RETRIES = Counter("hera_stage_retries_total", "Batch retries after a transient fault", ["stage", "kind"])
POISON = Counter("hera_poison_events_total", "Events dead-lettered after repeated processing failures",
                 ["stage"])
ENTRIES_POSTED = Counter("hera_entries_posted_total", "Journal entries written to the ledger")
LAG = Gauge("hera_stage_last_batch_timestamp_seconds", "Unix time of the last batch per stage", ["stage"])
