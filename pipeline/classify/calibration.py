"""Confidence calibration: from raw model output to the probability that the top code is right.

A logistic "meta" model, fit on out-of-fold predictions (merchants unseen by the scorer), reads
the raw top probability (as log-odds), its margin over the runner-up, the predicted code, and
whether independent evidence agrees: the MCC's ISO 18245 category, the multilingual keyword
lexicon, the feed source, a counterparty; and how unfamiliar the line is (``familiarity.py``).
It is fit on out-of-fold generated lines *and* on the real names of the external calibration
split (``data/classifier/external/``), so what unfamiliarity costs is learnt from real lines. Agreement of that evidence is what separates a
confident-and-right line from a confident-and-wrong one; a monotone map of the raw probability
alone (isotonic regression) cannot see it. How far a keyword can be trusted depends on the
category (on real names "restaurant" or "fuel" almost never mislead, "books" or "electronics"
often do), so keyword agreement also enters per predicted code; keywords of two categories
on one line are a signal of their own. So is a known brand (``brands_known.py``) whose category
agrees or disagrees with the model.

The output is a probability; ``scripts/train_classifier.py`` checks on held-out merchants that
auto-posted lines at confidence ≥ t are at least a share t right.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipeline.classify.codes import short_name
from pipeline.classify.features import Evidence

N_EVIDENCE = 11


def meta_features(probabilities: np.ndarray, evidence: Sequence[Evidence], classes: Sequence[str],
                  unfamiliar: np.ndarray, brand_hits: Sequence[str | None] | None = None) -> np.ndarray:
    """Design matrix of the calibrator, one row per event (``evidence`` from ``featurize``,
    ``unfamiliar`` from ``familiarity.signals``, ``brand_hits``: the known brand's category per
    row, ``brands_known.lookup``)."""
    k = probabilities.shape[1]
    best = probabilities.argmax(axis=1)
    ordered = np.sort(probabilities, axis=1)
    top = np.clip(ordered[:, -1], 1e-9, 1 - 1e-9)
    margin = top - ordered[:, -2]
    logit = np.log(top) - np.log1p(-top)
    shorts = [short_name(c) for c in classes]
    index = {name: j for j, name in enumerate(shorts)}
    best_names = [shorts[b] for b in best.tolist()]
    group = np.array([index.get(e.mcc_group, -1) if e.mcc_group else -1 for e in evidence])
    lex_has_best = np.array([name in e.lexicon for name, e in zip(best_names, evidence, strict=True)])
    any_lex = np.array([bool(e.lexicon) for e in evidence])
    multi_lex = np.array([len(e.lexicon) > 1 for e in evidence])
    hits = brand_hits if brand_hits is not None else [None] * len(evidence)
    brand_agrees = np.array([h is not None and h == name for name, h in zip(best_names, hits, strict=True)])
    brand_disagrees = np.array([h is not None for h in hits]) & ~brand_agrees
    has_mcc = np.array([e.has_mcc for e in evidence])
    card = np.array([e.card_feed for e in evidence])
    has_cp = np.array([e.has_counterparty for e in evidence])
    evidence_block = np.column_stack([has_mcc, group == best, (group >= 0) & (group != best), lex_has_best,
                                      any_lex & ~lex_has_best, any_lex, card, has_cp, multi_lex,
                                      brand_agrees, brand_disagrees]).astype(np.float64)
    onehot = np.eye(k)[best]
    return np.hstack([logit[:, None], margin[:, None], evidence_block, unfamiliar,
                      unfamiliar * logit[:, None], onehot, onehot * logit[:, None], onehot * lex_has_best[:, None]])


def fit(design: np.ndarray, correct: np.ndarray, c: float = 1.0,
        sample_weight: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=5000)
    model.fit(design, correct.astype(int), sample_weight=sample_weight)
    return model.coef_[0].astype(np.float64), float(model.intercept_[0])


CONFIDENCE_MAX = 0.9999   # a statistical model never claims certainty


def apply(design: np.ndarray, coef: np.ndarray, intercept: float) -> np.ndarray:
    """Calibrated probability that the top code is right (raw probability when uncalibrated)."""
    z = design @ coef + intercept if coef.size else design[:, 0]
    return np.minimum(1.0 / (1.0 + np.exp(-z)), CONFIDENCE_MAX)
