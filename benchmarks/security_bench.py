"""CPU cost of the data-protection checks on the hot path (not a test): validation per event
(strict JSON, PAN detection, plausibility checks included) and the per-entry digest that the
keyed audit chain records (``audit.entries_posted_payload``).

    .venv/bin/python benchmarks/security_bench.py [--events 20000]

CPU time of this process (``time.process_time``), best of 5, so that other processes on the
machine disturb it less than wall-clock time would. Prints one JSON object on stdout. To compare
with an older tree, run the same file with ``PYTHONPATH`` pointing at that tree.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from pipeline.devtools.sample import sample_events
from pipeline.domain.entries import JournalEntry, JournalLine
from pipeline.domain.validate import validate_many

RUNS = 5
BATCH = 1000
CODE = "HERA.FIN.EXP.TRAVEL.GROUND.v1"


def best_seconds(fn, count: int) -> float:
    best = float("inf")
    for _ in range(RUNS):
        started = time.process_time()
        fn()
        best = min(best, (time.process_time() - started) / count)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    events = list(sample_events(args.events, seed=7))
    result = {"validate_many_us_per_event": round(1e6 * best_seconds(
        lambda: [validate_many(events[i:i + BATCH]) for i in range(0, len(events), BATCH)], len(events)), 1)}
    try:
        from pipeline.ledger.audit import entries_posted_payload
    except ImportError:   # a tree from before the keyed chain
        entries_posted_payload = None
    if entries_posted_payload is not None:
        entries = [(JournalEntry("3f2504e0-4f89-11d3-9a0c-0305e82c3301", f"e{i}", CODE, datetime(2026, 3, 5, tzinfo=UTC),
                                 "USD", (JournalLine("6420", "DR", Decimal("23.40"), "USD", CODE),
                                         JournalLine("1010", "CR", Decimal("23.40"), "USD", CODE)), "bank_feed"),
                    str(uuid.uuid4())) for i in range(BATCH)]
        result["entry_digest_us_per_entry"] = round(1e6 * best_seconds(lambda: entries_posted_payload(entries),
                                                                       BATCH), 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
