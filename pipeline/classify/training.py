"""Training, calibration and threshold selection for the feed-line model (offline only).

Steps, all deterministic for a given corpus:

1. Featurise the training lines: the generated corpus plus the ``train`` split of the external
   real names (``data/classifier/external/``).
2. Out-of-fold scores with ``GroupKFold`` by *merchant*: every training line is scored by a model
   (and judged against a vocabulary and a known-brand table, ``brands_known.py``) that never saw
   its merchant, which is how the product meets merchants in the wild.
3. Fit a softmax temperature on those scores (direction-masked); fit the final model on all
   training lines.
4. Score the external ``calibration`` split (real names, never trained on) with the final model.
   The logistic calibrator (``calibration.py``) is fit on the out-of-fold lines plus those real
   lines, the real ones weighing as much as all generated lines together.
5. Thresholds: per smart code, the lowest t ≥ 0.85 at which out-of-fold auto-posts are, as a
   95 % Wilson lower bound, at least ``TARGET_PRECISION`` correct. Suspense never posts.
   Money-out lines whose MCC does not confirm the code (the real names have no MCC) must also
   reach the risk-controlled threshold of the real lines (``risk_controlled_threshold``, kept
   in ``model.json``), computed cross-fit: the real lines are split in two halves by merchant
   hash and each half is scored by a calibrator fit without it. (One threshold for all such
   lines: a separate, lower one for keyword-confirmed lines was tried and missed the target on
   the sealed split, see BENCHMARKS.md.)
6. The external ``test`` split is sealed: nothing here reads it (``hera classify --eval`` does).

The learner is ``LinearSVC`` (liblinear, one-vs-rest): fast to fit and to predict, strong on
sparse n-grams; its margins become probabilities through steps 3–4.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.model_selection import GroupKFold
from sklearn.svm import LinearSVC

from pipeline.classify import brands_known, calibration, familiarity
from pipeline.classify.codes import FEED_CODES, SUSPENSE, enum_value
from pipeline.classify.evaluate import DictEvent
from pipeline.classify.features import N_FEATURES, featurize, token_counts
from pipeline.classify.model import LinearModel, softmax

SVC_C = 0.5
FOLDS = 5
THRESHOLD_FLOOR = 0.85
TARGET_PRECISION = 0.98       # the promise: auto-posted lines of every code ≥ 98 % right …
WILSON_Z = 1.645              # … as a one-sided 95 % lower bound on out-of-fold precision
THRESHOLD_MIN_SUPPORT = 30    # fewer confident out-of-fold lines than this → a strict default
THRESHOLD_STRICT = 0.97
NEVER = 1.01                  # a threshold no confidence reaches
WARM_TOKENS_MAX = 20_000      # most frequent training tokens, pre-featurised when the model loads
VOCAB_MIN_COUNT = 2           # a token seen once may be a typo or a reference; twice, the model knows it
REAL_WEIGHT = 1.0             # the real calibration lines together weigh this many times all generated lines
RISK_ALPHA = 0.05             # for the Clopper-Pearson bound reported beside the chosen threshold
RISK_RULE = "(errors + 1) / (n + 1) <= 1 - target on undoubted real calibration lines, cross-fit"


def load_corpus(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def labels(rows: Sequence[dict], classes: Sequence[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[r["expected_smart_code"]] for r in rows], dtype=np.int64)


def fit_linear(matrix, y: np.ndarray, n_classes: int, c: float = SVC_C) -> tuple[np.ndarray, np.ndarray]:
    """Weights (features × classes) and intercepts; classes absent from y get -inf-like bias."""
    clf = LinearSVC(C=c, random_state=0, max_iter=2000)
    clf.fit(matrix, y)
    weights = np.zeros((N_FEATURES, n_classes), dtype=np.float32)
    intercept = np.full(n_classes, -10.0, dtype=np.float32)
    for j, cls in enumerate(clf.classes_):
        weights[:, cls] = clf.coef_[j] if clf.coef_.shape[0] > 1 else clf.coef_[0]
        intercept[cls] = clf.intercept_[j] if clf.intercept_.shape[0] > 1 else clf.intercept_[0]
    return weights, intercept


def vocabulary_of(events: Sequence[object], min_count: int = VOCAB_MIN_COUNT) -> frozenset[str]:
    """Tokens seen at least ``min_count`` times: what the model can be said to know."""
    return frozenset(t for t, n in token_counts(events).items() if n >= min_count)


def out_of_fold_scores(matrix, y: np.ndarray, groups: np.ndarray, n_classes: int, events: Sequence[object],
                       evidence: Sequence, folds: int = FOLDS, brand_entries: Sequence[tuple[str, str, str]] = ()
                       ) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """Scores, familiarity signals and known-brand hits of every line from a model (vocabulary,
    brand table) that never saw its merchant."""
    scores = np.zeros((matrix.shape[0], n_classes))
    unfamiliar = np.zeros((matrix.shape[0], familiarity.N_SIGNALS))
    brand_hits: list[str | None] = [None] * matrix.shape[0]
    for train_idx, test_idx in GroupKFold(n_splits=folds).split(matrix, y, groups):
        weights, intercept = fit_linear(matrix[train_idx], y[train_idx], n_classes)
        scores[test_idx] = matrix[test_idx] @ weights + intercept
        vocabulary = vocabulary_of([events[i] for i in train_idx])
        unfamiliar[test_idx] = familiarity.signals([evidence[i] for i in test_idx], vocabulary)
        seen = set(groups[train_idx].tolist())
        table = brands_known.build((name, short) for mid, name, short in brand_entries if mid in seen)
        for i in test_idx.tolist():
            brand_hits[i] = brands_known.lookup(evidence[i].tokens, table)
    return scores, unfamiliar, brand_hits


def clopper_pearson_upper(errors: int, n: int, alpha: float = RISK_ALPHA) -> float:
    """One-sided (1 - alpha) upper confidence bound of a binomial error rate."""
    from scipy.stats import beta

    return 1.0 if n == 0 or errors >= n else float(beta.ppf(1 - alpha, errors + 1, n - errors))


def risk_controlled_threshold(conf: np.ndarray, correct: np.ndarray, eligible: np.ndarray,
                              risk: float = 1 - TARGET_PRECISION) -> tuple[float, list[dict]]:
    """Lowest threshold whose auto-posts on held-out real lines pass ``RISK_RULE``.

    The rule is the conformal-style plus-one bound (errors + 1) / (n + 1) ≤ ``risk``: one more
    error than was seen, charged to the next line, for the whole set that would post at t (all
    lines with confidence ≥ t). The lowest passing t on the grid is chosen. The trace also gives
    the one-sided 95 % Clopper-Pearson upper bound, a stricter statement that the calibration
    split is too small to meet at useful coverage.
    """
    grid = np.round(np.arange(0.999, THRESHOLD_FLOOR - 1e-9, -0.001), 3)
    chosen, trace = NEVER, []
    for t in grid:
        sel = eligible & (conf >= t)
        n, errors = int(sel.sum()), int((sel & ~correct).sum())
        plus_one = (errors + 1) / (n + 1)
        if n and round(t, 2) == t:
            trace.append({"threshold": float(t), "n": n, "errors": errors, "plus_one": round(plus_one, 4),
                          "clopper_pearson_95": round(clopper_pearson_upper(errors, n), 4)})
        if plus_one <= risk:
            chosen = float(t)
    return chosen, trace


def fit_temperature(scores: np.ndarray, mask: np.ndarray, y: np.ndarray) -> float:
    """Scalar T minimising the negative log-likelihood of softmax(T · scores)."""
    rows = np.arange(len(y))

    def nll(t: float) -> float:
        p = softmax(t * scores + mask)[rows, y]
        return float(-np.log(np.clip(p, 1e-12, 1.0)).mean())

    return float(minimize_scalar(nll, bounds=(0.1, 50.0), method="bounded").x)


def wilson_lower(hits: np.ndarray, n: np.ndarray, z: float = WILSON_Z) -> np.ndarray:
    """Lower end of the Wilson score interval for a binomial proportion."""
    p = hits / n
    centre = p + z * z / (2 * n)
    spread = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n)


def choose_thresholds(pred: np.ndarray, conf: np.ndarray, correct: np.ndarray, classes: Sequence[str],
                      target: float = TARGET_PRECISION, floor: float = THRESHOLD_FLOOR) -> dict[str, float]:
    """Per code: lowest t ≥ floor whose out-of-fold precision among lines predicted as that code with
    confidence ≥ t is, as a 95 % lower bound, at least max(target, t)."""
    out: dict[str, float] = {}
    for k, code in enumerate(classes):
        if code == SUSPENSE:
            out[code] = NEVER
            continue
        sel = pred == k
        c, ok = conf[sel], correct[sel]
        order = np.argsort(-c)
        c, ok = c[order], ok[order]
        hits = np.cumsum(ok)
        n = np.arange(1, len(c) + 1)
        precision = wilson_lower(hits, n)
        best = None
        for i in range(len(c)):
            t = c[i]
            if i + 1 < len(c) and c[i + 1] == t:
                continue  # only cut between distinct confidences
            if t < floor:
                break
            if precision[i] >= max(target, t) and n[i] >= THRESHOLD_MIN_SUPPORT:
                best = t
        out[code] = round(float(max(best, floor)), 4) if best is not None else THRESHOLD_STRICT
    return out


def direction_masks(model_classes: Sequence[str], rows: Sequence[dict]) -> np.ndarray:
    probe = LinearModel(list(model_classes), np.zeros((N_FEATURES, len(model_classes)), np.float32),
                        np.zeros(len(model_classes), np.float32), 1.0, np.array([]), 0.0)
    return probe.mask([enum_value(r.get("direction")) for r in rows])


def _real_split(rows: Sequence[dict]) -> np.ndarray:
    """True for the half of the real calibration lines that fits the calibrator (by merchant hash);
    the other half only chooses the threshold."""
    return np.array([int(hashlib.sha256(r["merchant_id"].encode()).hexdigest()[:8], 16) % 2 == 0 for r in rows])


def train(train_rows: list[dict], *, real_rows: Sequence[dict] = (), folds: int = FOLDS,
          brand_entries: Sequence[tuple[str, str, str]] = ()) -> tuple[LinearModel, dict[str, float], dict]:
    """Fit, calibrate and choose thresholds; returns the model, thresholds and diagnostics.

    ``real_rows`` (the external calibration split) are never trained on. They join the
    calibrator's fit; the threshold is chosen on them cross-fit (each half scored by a calibrator
    fit on the other half), over the lines whose label is not marked doubtful.
    ``brand_entries``: (merchant id, brand name, short category) of the training merchants, for
    the known-brand table (``brands_known.py``; out of fold, a merchant's own entry is left out).
    """
    classes = list(FEED_CODES)
    events = [DictEvent(r) for r in train_rows]
    evidence: list = []
    matrix = featurize(events, evidence)
    y = labels(train_rows, classes)
    groups = np.array([r["merchant_id"] for r in train_rows])
    mask = direction_masks(classes, train_rows)

    oof, unfamiliar, oof_brands = out_of_fold_scores(matrix, y, groups, len(classes), events, evidence, folds,
                                                     brand_entries)
    temperature = fit_temperature(oof, mask, y)
    probs = softmax(temperature * oof + mask)
    pred = probs.argmax(axis=1)
    correct = pred == y
    design = calibration.meta_features(probs, evidence, classes, unfamiliar, oof_brands)

    weights, intercept = fit_linear(matrix, y, len(classes))
    counts = token_counts(events)
    warm = sorted(counts, key=lambda t: (-counts[t], t))[:WARM_TOKENS_MAX]
    vocabulary = vocabulary_of(events)
    model = LinearModel(classes, weights, intercept, temperature, np.array([]), 0.0, {}, warm, vocabulary,
                        brands_known.build((name, short) for _, name, short in brand_entries))

    real = _score_real(model, real_rows, classes)

    def fit_calibrator(real_mask: np.ndarray | None) -> tuple[np.ndarray, float]:
        if real is None or real_mask is None or not real_mask.any():
            return calibration.fit(design, correct)
        w_real = REAL_WEIGHT * len(correct) / int(real_mask.sum())
        return calibration.fit(np.vstack([design, real["design"][real_mask]]),
                               np.concatenate([correct, real["correct"][real_mask]]),
                               sample_weight=np.concatenate([np.ones(len(correct)), np.full(int(real_mask.sum()), w_real)]))

    meta: dict = {"learner": f"LinearSVC(C={SVC_C})", "folds": folds, "temperature": temperature,
                  "train_lines": len(train_rows), "oof_accuracy": round(float(correct.mean()), 4),
                  "vocabulary": len(vocabulary), "known_brands": len(model.brands)}
    t_real = None
    if real is not None:
        # cross-fit: each real half is scored by a calibrator fit on the other half
        half = real["fit"]
        conf_real = np.zeros(len(half))
        for fit_mask in (half, ~half):
            model.cal_coef, model.cal_intercept = fit_calibrator(fit_mask)
            conf_real[~fit_mask] = model.calibrate(real["probs"], real["evidence"]).confidence[~fit_mask]
        pred_real = real["probs"].argmax(axis=1)
        eligible = (pred_real != classes.index(SUSPENSE)) & real["undoubted"]
        t_real, trace = risk_controlled_threshold(conf_real, real["correct"], eligible)
        meta["real_calibration"] = {"lines": len(real_rows), "undoubted_lines": int(real["undoubted"].sum()),
                                    "risk_controlled_threshold": t_real, "target_precision": TARGET_PRECISION,
                                    "rule": RISK_RULE, "trace": trace}
    model.cal_coef, model.cal_intercept = fit_calibrator(np.ones(len(real_rows), dtype=bool) if real else None)
    conf = calibration.apply(design, model.cal_coef, model.cal_intercept)
    thresholds = choose_thresholds(pred, conf, correct, classes)
    # t_real is applied by the model itself (``LinearModel.real_threshold``) to lines without an
    # agreeing MCC, the population it was measured on; the per-code thresholds stay for the rest.
    model.meta = meta
    return model, thresholds, meta


def _score_real(model: LinearModel, rows: Sequence[dict], classes: list[str]) -> dict | None:
    """The final model's (uncalibrated) view of the real calibration lines."""
    if not rows:
        return None
    events = [DictEvent(r) for r in rows]
    evidence: list = []
    matrix = featurize(events, evidence)
    probs = model.probabilities(model.scores(matrix), [enum_value(r.get("direction")) for r in rows])
    y = labels(rows, classes)
    unfamiliar = familiarity.signals(evidence, model.vocabulary)
    return {"probs": probs, "evidence": evidence, "correct": probs.argmax(axis=1) == y, "fit": _real_split(rows),
            "undoubted": np.array([not r.get("doubt") for r in rows], dtype=bool),
            "design": calibration.meta_features(probs, evidence, classes, unfamiliar,
                                                [brands_known.lookup(e.tokens, model.brands) for e in evidence])}
