"""Classifier benchmark: batch throughput, held-out quality, and the org-learning curve (JSON).

    .venv/bin/python benchmarks/classify_bench.py [--batch 10000] [--repeats 5]

- ``throughput``: lines/s of ``Classifier.classify_batch`` on a batch of held-out feed lines
  (merchants never seen in training): the first (cold) batch after load, and the best and median
  of ``repeats`` further batches (token caches warm, as in a running worker); also per CPU
  second of this process (``median_lines_per_cpu_s``, ``cpu_us_per_line``), which a busy machine
  distorts less than wall-clock time.
- ``heldout``: accuracy, auto-post rate and auto-post precision with the shipped thresholds.
- ``learning_curve``: for a few held-out counterparties the model gets wrong, auto-post rate and
  precision on their next lines after k reviewer corrections.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.classify import Classifier  # noqa: E402
from pipeline.classify.evaluate import DictEvent, evaluate, learning_curve  # noqa: E402
from pipeline.classify.training import load_corpus  # noqa: E402

HELDOUT = ROOT / "data" / "classifier" / "corpus_heldout.jsonl.gz"


def throughput(classifier: Classifier, events: list, repeats: int) -> dict:
    started = time.perf_counter()
    classifier.classify_batch(events)
    cold = len(events) / (time.perf_counter() - started)
    rates, cpu_rates = [], []
    for _ in range(repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        classifier.classify_batch(events)
        rates.append(len(events) / (time.perf_counter() - started))
        cpu_rates.append(len(events) / max(time.process_time() - cpu_started, 1e-9))
    cpu_median = statistics.median(cpu_rates)
    return {"batch": len(events), "cold_lines_per_s": round(cold), "best_lines_per_s": round(max(rates)),
            "median_lines_per_s": round(statistics.median(rates)),
            # CPU time of this process: on a shared machine, closer to what a quiet core would give
            "median_lines_per_cpu_s": round(cpu_median), "cpu_us_per_line": round(1e6 / cpu_median, 1)}


def curve(classifier: Classifier, rows: list[dict], counterparties: int = 20) -> dict:
    """Average learning curve over merchants whose lines the model mostly gets wrong."""
    by_merchant: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        if row["direction"] == "debit":
            by_merchant[row["merchant_id"]].append(row)
    chosen = []
    for mid in sorted(by_merchant):
        lines = by_merchant[mid]
        if len(lines) < 6 or len({r["expected_smart_code"] for r in lines}) != 1:
            continue
        results = classifier.classify_batch([DictEvent(r) for r in lines])
        if sum(c.smart_code != r["expected_smart_code"] for c, r in zip(results, lines, strict=True)) >= len(lines) // 2:
            chosen.append(lines)
        if len(chosen) == counterparties:
            break
    ks = (0, 1, 2, 3)
    totals = {k: {"next": 0, "correct": 0, "posted": 0, "posted_correct": 0} for k in ks}
    for lines in chosen:
        events = [DictEvent(r) for r in lines]
        code = lines[0]["expected_smart_code"]
        for point in learning_curve(classifier, events, code, classifier.thresholds, ks=ks):
            t = totals[point["k"]]
            t["next"] += point["next"]
            t["correct"] += round(point["accuracy"] * point["next"])
            t["posted"] += round(point["auto_post_rate"] * point["next"])
            if point["auto_post_precision"] is not None:
                t["posted_correct"] += round(point["auto_post_precision"] * point["auto_post_rate"] * point["next"])
    return {"counterparties": len(chosen), "points": [
        {"k": k, "next_lines": t["next"], "accuracy": round(t["correct"] / t["next"], 4) if t["next"] else None,
         "auto_post_rate": round(t["posted"] / t["next"], 4) if t["next"] else None,
         "auto_post_precision": round(t["posted_correct"] / t["posted"], 4) if t["posted"] else None}
        for k, t in totals.items()]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    classifier = Classifier.load()
    load_seconds = time.perf_counter() - started
    rows = load_corpus(HELDOUT)
    events = [DictEvent(r) for r in rows[: args.batch]]
    report = {"load_seconds": round(load_seconds, 3), "throughput": throughput(classifier, events, args.repeats)}
    held = evaluate([(DictEvent(r), r["expected_smart_code"]) for r in rows], classifier, classifier.thresholds)
    report["heldout"] = {k: held[k] for k in ("n", "accuracy", "auto_post_rate", "auto_post_precision", "review_rate")}
    report["learning_curve"] = curve(classifier, rows)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
