"""The worker's CPU per event, step by step, with no I/O (JSON).

    .venv/bin/python benchmarks/hotpath_bench.py [--events 20000] [--batch 500] [--repeats 3]

Runs the pure steps a worker runs for each raw record, on ``hera sample``'s events, in batches like
the worker's: validation (``flow.validate_batch``), classification and entry building
(``flow.classify_batch``), the posted messages and audit records (``flow.post_batch``'s shaping,
without the database) and their serialisation. Times are CPU seconds of this process
(``time.process_time``: a busy machine distorts them less than wall-clock time), the best of
``repeats`` passes, in microseconds per event.

``digest`` is a SHA-256 over every output the steps produced (messages' topics, keys, values and
headers; the entries; the audit records), so a change meant to make a step faster can show it
changed nothing else: the digest must not move.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agents.tuning import GC_THRESHOLDS  # noqa: E402
from pipeline.devtools.sample import sample_events  # noqa: E402
from pipeline.envelopes import Record, dumps, entry_to_json, posted_message  # noqa: E402
from pipeline.flow import ClassifyContext, audit_record, calibrated_catalog, classify_batch, validate_batch  # noqa: E402


def _digest_emits(h: Any, emits: list[Any]) -> None:
    for e in emits:
        h.update(repr((e.topic_key, e.key, e.value, e.headers)).encode())


def run(events: int, batch: int) -> tuple[dict[str, float], str]:
    from pipeline.classify import Classifier

    classifier = Classifier.load()
    ctx = ClassifyContext(classifier=classifier, catalog=calibrated_catalog(classifier))
    gc.collect()
    gc.freeze()  # as the worker does once it has loaded (agents/worker.py): collections scan only batches
    gc.set_threshold(*GC_THRESHOLDS)  # and with the worker's collection thresholds (agents/tuning.py)
    raws = list(sample_events(events, seed=11))
    batches = [[Record("hera.transactions.raw", 0, off, None, raw, 1_764_000_000_000 + off)
                for off, raw in enumerate(raws[i:i + batch], start=i)] for i in range(0, len(raws), batch)]
    spent = {"validate": 0.0, "classify": 0.0, "posted_messages": 0.0}
    h = hashlib.sha256()
    for records in batches:
        t0 = time.process_time()
        out, work, _ = validate_batch(records, known_orgs=None, payload_bytes_max=65_536, inline=lambda r, o: True)
        t1 = time.process_time()
        result, staged = classify_batch([env for env, _, _ in work.inline], ctx,
                                        events=[event for _, _, event in work.inline])
        t2 = time.process_time()
        posted = []
        for i, (env, entry) in enumerate(staged.to_post):
            entry_id = str(uuid.UUID(int=i))
            posted.append(posted_message(entry, entry_id, classification=env.classification,
                                         source=env.source.to_json(), body=env.entry))
            result.audit.append(audit_record("post", entry.organization_id, entry.event_id, "posted",
                                             entry_id=entry_id, smart_code=entry.smart_code, total=str(entry.total)))
        audit = dumps({"records": out.audit + result.audit})
        t3 = time.process_time()
        spent["validate"] += t1 - t0
        spent["classify"] += t2 - t1
        spent["posted_messages"] += t3 - t2
        _digest_emits(h, out.emits + result.emits + posted)
        for env in staged.reviews:
            h.update(dumps(env.to_json()))
        for _, entry in staged.to_post:
            h.update(dumps(entry_to_json(entry)))
        h.update(audit)
    return spent, h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    best: dict[str, float] = {}
    digests = set()
    for _ in range(args.repeats):
        spent, digest = run(args.events, args.batch)
        digests.add(digest)
        best = {k: min(v, best.get(k, v)) for k, v in spent.items()}
    per_event = {k: round(v / args.events * 1e6, 1) for k, v in best.items()}
    print(json.dumps({"events": args.events, "batch": args.batch, "repeats": args.repeats,
                      "cpu_us_per_event": {**per_event, "total": round(sum(per_event.values()), 1)},
                      "digest": digests.pop() if len(digests) == 1 else sorted(digests)}, indent=2))


if __name__ == "__main__":
    main()
