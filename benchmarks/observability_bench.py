"""Per-batch cost of what the worker adds for observability and caching, on one core, no I/O:
the latency histogram (batch-binned collector vs prometheus_client's Histogram.observe), the
outcome counters, and a chart lookup through the in-process org cache. Prints JSON.

    .venv/bin/python benchmarks/observability_bench.py
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

from prometheus_client import CollectorRegistry, Histogram

from pipeline.ledger.cache import OrgCaches
from pipeline.observability.metrics import LATENCY_BUCKETS, BatchHistogram, record_outcomes

BATCH = 1000
ORGS = 50
ROUNDS = 300


def per_call_us(fn, rounds: int = ROUNDS) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(rounds):
        fn()
    return (time.perf_counter() - start) / rounds * 1e6


async def cache_us() -> float:
    caches = OrgCaches.from_url(None)
    orgs = [str(uuid.uuid4()) for _ in range(ORGS)]
    await caches.set_many("chart", {o: {"1010": uuid.uuid4()} for o in orgs})
    start = time.perf_counter()
    for _ in range(ROUNDS):
        await caches.get_many("chart", orgs)
    return (time.perf_counter() - start) / ROUNDS * 1e6


def main() -> None:
    registry = CollectorRegistry()
    plain = Histogram("plain_seconds", "x", buckets=LATENCY_BUCKETS, registry=registry)
    binned = BatchHistogram("binned_seconds", "x", LATENCY_BUCKETS, registry=registry)
    values = [0.001 * (i % 3000) for i in range(BATCH)]

    def observe_each() -> None:
        for v in values:
            plain.observe(v)

    print(json.dumps({
        "batch": BATCH,
        "latency_histogram_observe_each_us_per_batch": round(per_call_us(observe_each, 50)),
        "latency_batch_histogram_us_per_batch": round(per_call_us(lambda: binned.observe_many(values))),
        "record_outcomes_us_per_batch": round(per_call_us(lambda: record_outcomes(
            "validate", {"validated": BATCH, "posted": 990, "rejected": 10}, {"SCHEMA_INVALID": 10})), 1),
        f"chart_cache_get_many_{ORGS}_orgs_us": round(asyncio.run(cache_us())),
    }))


if __name__ == "__main__":
    main()
