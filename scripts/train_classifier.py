"""Rebuild the feed-line classifier from the committed corpus and print held-out metrics (JSON).

    .venv/bin/python scripts/train_classifier.py              # train + write pipeline/classify/model/
    .venv/bin/python scripts/train_classifier.py --regenerate # rebuild the corpus first (same seed)
    .venv/bin/python scripts/train_classifier.py --out DIR    # write the artifact elsewhere

Deterministic: the same corpus bytes give the same weights, thresholds and predictions. The
held-out split (merchants never in training) is used only for the metrics printed at the end; the
external real names are used as ``pipeline/classify/training.py`` says (their sealed ``test``
split never: measure it with ``hera classify --eval data/classifier/external/nsi_names.jsonl.gz``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.classify.classifier import Classifier  # noqa: E402
from pipeline.classify.codes import short_name  # noqa: E402
from pipeline.classify.evaluate import DictEvent, coverage_curve, evaluate  # noqa: E402
from pipeline.classify.model import MODEL_DIR  # noqa: E402
from pipeline.classify.training import load_corpus, train  # noqa: E402

CORPUS_DIR = ROOT / "data" / "classifier"
EXTERNAL = CORPUS_DIR / "external" / "nsi_names.jsonl.gz"


def external_rows(split: str) -> list[dict]:
    """One split of the external real names; the sealed ``test`` split is never asked for here."""
    if split == "test":
        raise ValueError("the sealed test split is not for training")
    return [r for r in load_corpus(EXTERNAL) if r["split"] == split] if EXTERNAL.exists() else []


def brand_entries(real_train: list[dict]) -> list[tuple[str, str, str]]:
    """(merchant id, name, short category) of the training brands of ``brands.py`` (held-out ones
    left out, as the generator splits them) and of the external ``train`` split."""
    sys.path.insert(0, str(CORPUS_DIR))
    import random

    from generate_corpus import HELDOUT_PERCENT, parse_brands

    out = [(b["id"], b["name"], b["code"]) for b in parse_brands(random.Random(0))
           if b["pinned"] or int(b["id"], 16) % 100 >= HELDOUT_PERCENT]
    out += [(r["merchant_id"], r["description"], short_name(r["expected_smart_code"])) for r in real_train]
    return out


def heldout_metrics(classifier: Classifier, rows: list[dict]) -> dict:
    pairs = [(DictEvent(r), r["expected_smart_code"]) for r in rows]
    report = evaluate(pairs, classifier, classifier.thresholds)
    results = classifier.classify_batch([e for e, _ in pairs])
    report["coverage_curve"] = coverage_curve(results, [c for _, c in pairs])
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regenerate", action="store_true", help="rebuild the corpus from its generator first")
    parser.add_argument("--out", type=Path, default=MODEL_DIR)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.regenerate:
        sys.path.insert(0, str(CORPUS_DIR))
        import generate_corpus

        generate_corpus.main([])
    train_path, heldout_path = CORPUS_DIR / "corpus_train.jsonl.gz", CORPUS_DIR / "corpus_heldout.jsonl.gz"
    train_rows, heldout_rows = load_corpus(train_path), load_corpus(heldout_path)
    real_train, real_calibration = external_rows("train"), external_rows("calibration")
    print(f"training on {len(train_rows)} + {len(real_train)} real lines ...", file=sys.stderr)
    model, thresholds, meta = train(train_rows + real_train, real_rows=real_calibration,
                                    brand_entries=brand_entries(real_train))
    classifier = Classifier(model, thresholds)
    report = heldout_metrics(classifier, heldout_rows)
    model.meta.update({
        "corpus_train_sha256": hashlib.sha256(train_path.read_bytes()).hexdigest(),
        "external_sha256": hashlib.sha256(EXTERNAL.read_bytes()).hexdigest() if EXTERNAL.exists() else None,
        "heldout": {k: report[k] for k in ("n", "accuracy", "auto_post_rate", "auto_post_precision", "review_rate")},
    })
    model.save(args.out)
    (args.out / "thresholds.json").write_text(json.dumps(thresholds, indent=2, sort_keys=True) + "\n")
    report["train"] = meta
    report["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
