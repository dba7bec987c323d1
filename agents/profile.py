"""Where a batch's time goes, hop by hop, as one Prometheus histogram the bench reads back.

``hera_hop_seconds{stage, hop}``:

    queued             the oldest record of a batch: its timestamp → taken (produce + broker + fetch)
    process            taken → processed (validation, admission, classification: CPU)
    admit, classify    parts of process
    ledger             the batch's database transactions (review items and entries, at once)
    admission_publish  waiting for admission's changelog records and parked events (started early)
    publish            producing the outputs until the broker has them all
    release            taken → released (process, waiting for earlier batches, settle)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import Histogram

HOP_SECONDS = Histogram("hera_hop_seconds", "Seconds per batch spent in each hop of a stage", ["stage", "hop"],
                        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))


@contextmanager
def hop(stage: str, name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        HOP_SECONDS.labels(stage, name).observe(time.perf_counter() - started)


def observe_taken(stage: str) -> Any:
    def on_taken(batch: list[Any]) -> None:
        stamps = [d.record.timestamp_ms for d in batch if d.record.timestamp_ms]
        if stamps:
            HOP_SECONDS.labels(stage, "queued").observe(max(0.0, time.time() - min(stamps) / 1000))
    return on_taken


def observe_processed(stage: str) -> Any:
    def on_processed(_: int, seconds: float) -> None:
        HOP_SECONDS.labels(stage, "process").observe(seconds)
    return on_processed


def summary() -> dict[str, dict[str, dict[str, float]]]:
    """``{stage: {hop: {"batches", "mean_ms", "p50_ms", "p95_ms"}}}`` of this process's hops so far
    (percentiles interpolated within the histogram's buckets)."""
    sums: dict[tuple[str, str], float] = {}
    counts: dict[tuple[str, str], float] = {}
    buckets: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for metric in HOP_SECONDS.collect():
        for sample in metric.samples:
            key = (sample.labels["stage"], sample.labels["hop"])
            if sample.name.endswith("_sum"):
                sums[key] = sample.value
            elif sample.name.endswith("_count"):
                counts[key] = sample.value
            elif sample.name.endswith("_bucket"):
                buckets.setdefault(key, []).append((float(sample.labels["le"]), sample.value))
    out: dict[str, dict[str, dict[str, float]]] = {}
    for key, n in counts.items():
        if not n:
            continue
        stage, name = key
        out.setdefault(stage, {})[name] = {
            "batches": n, "mean_ms": round(sums[key] / n * 1000, 2),
            "p50_ms": round(_quantile(buckets[key], n, 0.50) * 1000, 2),
            "p95_ms": round(_quantile(buckets[key], n, 0.95) * 1000, 2)}
    return out


def _quantile(buckets: list[tuple[float, float]], n: float, q: float) -> float:
    """Prometheus' ``histogram_quantile``: linear within the bucket that holds the q-th value."""
    rank, lower, below = q * n, 0.0, 0.0
    for upper, cumulative in sorted(buckets):
        if cumulative >= rank:
            if upper == float("inf"):
                return lower
            inside = cumulative - below
            return lower + (upper - lower) * ((rank - below) / inside if inside else 0.0)
        lower, below = upper, cumulative
    return lower


def write_summary(path: Any) -> None:
    import json
    from pathlib import Path

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(summary(), indent=1))
