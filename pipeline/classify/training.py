"""Training, calibration and threshold selection for the feed-line model (offline only).

Steps, all deterministic for a given corpus:

1. Featurise the training split (``features.featurize``).
2. Out-of-fold scores with ``GroupKFold`` by *merchant*: every training line is scored by a model
   that never saw its merchant, which is how the product meets merchants in the wild.
3. Fit a softmax temperature on those scores (direction-masked), then the logistic calibrator
   (``calibration.py``) from the top-class probability and independent evidence (MCC category,
   keyword lexicon) to the observed share correct.
4. Per smart code, the lowest threshold ≥ the 0.85 floor at which out-of-fold auto-posts are at
   least ``TARGET_PRECISION`` correct (never for suspense).
5. Fit the final model on the whole training split; the held-out split (other merchants) is
   only ever used to report metrics.

The learner is ``LinearSVC`` (liblinear, one-vs-rest): fast to fit and to predict, strong on
sparse n-grams; its margins become probabilities through steps 3–4.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.model_selection import GroupKFold
from sklearn.svm import LinearSVC

from pipeline.classify import calibration
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


def out_of_fold_scores(matrix, y: np.ndarray, groups: np.ndarray, n_classes: int, folds: int = FOLDS) -> np.ndarray:
    scores = np.zeros((matrix.shape[0], n_classes))
    for train_idx, test_idx in GroupKFold(n_splits=folds).split(matrix, y, groups):
        weights, intercept = fit_linear(matrix[train_idx], y[train_idx], n_classes)
        scores[test_idx] = matrix[test_idx] @ weights + intercept
    return scores


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


def train(train_rows: list[dict], *, folds: int = FOLDS) -> tuple[LinearModel, dict[str, float], dict]:
    """Fit, calibrate and choose thresholds; returns the model, thresholds and OOF diagnostics."""
    classes = list(FEED_CODES)
    events = [DictEvent(r) for r in train_rows]
    evidence: list = []
    matrix = featurize(events, evidence)
    y = labels(train_rows, classes)
    groups = np.array([r["merchant_id"] for r in train_rows])
    mask = direction_masks(classes, train_rows)

    oof = out_of_fold_scores(matrix, y, groups, len(classes), folds)
    temperature = fit_temperature(oof, mask, y)
    probs = softmax(temperature * oof + mask)
    pred = probs.argmax(axis=1)
    correct = pred == y
    design = calibration.meta_features(probs, evidence, classes)
    cal_coef, cal_intercept = calibration.fit(design, correct)
    conf = calibration.apply(design, cal_coef, cal_intercept)
    thresholds = choose_thresholds(pred, conf, correct, classes)

    weights, intercept = fit_linear(matrix, y, len(classes))
    meta = {"learner": f"LinearSVC(C={SVC_C})", "folds": folds, "temperature": temperature,
            "train_lines": len(train_rows), "oof_accuracy": round(float(correct.mean()), 4)}
    counts = token_counts(events)
    warm = sorted(counts, key=lambda t: (-counts[t], t))[:WARM_TOKENS_MAX]
    model = LinearModel(classes, weights, intercept, temperature, cal_coef, cal_intercept, meta, warm)
    return model, thresholds, meta
