"""The shipped text model: a linear scorer over hashed features, plus its calibration.

Artifact (``pipeline/classify/model/``), written by ``scripts/train_classifier.py``:

- ``model.npz``: ``classes``, the non-zero weight rows (``rows``, ``coef`` float32), ``intercept``,
  ``temperature`` and the calibrator (``cal_coef``, ``cal_intercept``, see ``calibration.py``);
- ``model.json``: format version, feature-space width, training metadata and held-out metrics;
- ``thresholds.json``: the recommended auto-post threshold per smart code;
- ``vocab.txt``: tokens seen at least twice in training (what "known" means in ``familiarity.py``);
- ``brands.tsv``: known brand names and their category (``brands_known.py``).

No pickles: loading is plain numpy, so an artifact is data, not code, and survives library
upgrades. Scores are masked by direction (money out can only be an expense or suspense; money
in only a receipt, interest, refund or suspense) before the temperature-scaled softmax.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.classify import brands_known, calibration, familiarity
from pipeline.classify.codes import allowed_codes, short_name
from pipeline.classify.features import N_FEATURES, featurize
from pipeline.domain.errors import HeraError

FORMAT_VERSION = 3
WARM_TOKENS_FILE = "warm_tokens.txt"
VOCAB_FILE = "vocab.txt"
BRAND_HITS_CACHED_MAX = 50_000
MODEL_DIR = Path(__file__).resolve().parent / "model"


class ModelArtifactError(HeraError, RuntimeError):
    """The model artifact is missing, malformed, or built for another feature space."""


@dataclass(frozen=True)
class Prediction:
    """Per batch: best code index, calibrated confidence, and full masked probabilities."""

    best: np.ndarray          # int, shape (n,)
    confidence: np.ndarray    # float, shape (n,), calibrated
    raw_confidence: np.ndarray
    probabilities: np.ndarray  # float, shape (n, classes), temperature-scaled, masked
    evidence: tuple = ()       # features.Evidence per row
    unfamiliar: np.ndarray | None = None   # familiarity.signals per row
    capped_by: tuple[str | None, ...] = ()  # name of the familiarity cap that applies to the row
    matrix: object = None      # the feature rows (scipy CSR), for explanations


class LinearModel:
    """Scores, masks, calibrates. Immutable after construction."""

    def __init__(self, classes: list[str], weights: np.ndarray, intercept: np.ndarray, temperature: float,
                 cal_coef: np.ndarray, cal_intercept: float, meta: dict | None = None,
                 warm_tokens: list[str] | None = None, vocabulary: Iterable[str] = (),
                 brands: dict[tuple[str, ...], str] | None = None) -> None:
        if weights.shape != (N_FEATURES, len(classes)):
            raise ModelArtifactError(f"weights shape {weights.shape} does not match features/classes")
        self.classes = list(classes)
        self.index = {code: i for i, code in enumerate(self.classes)}
        # float64 like the feature rows: a float32 matrix would be up-cast to a float64 copy (tens of MB)
        # by every product, which cost more than all the rest of a batch's scoring
        self.weights = np.asarray(weights, dtype=np.float64)
        self.intercept = intercept.astype(np.float32)
        self.temperature = float(temperature)
        self.cal_coef = np.asarray(cal_coef, dtype=np.float64)
        self.cal_intercept = float(cal_intercept)
        self.meta = meta or {}
        self.warm_tokens = list(warm_tokens or [])
        self.vocabulary = frozenset(vocabulary)
        self.brands = dict(brands or {})
        self._short_names = [short_name(c) for c in self.classes]
        self._mask_table = np.vstack([self._mask_for(d) for d in ("debit", "credit", None)])
        self._brand_hits: dict[tuple[str, ...], str | None] = {}

    def _mask_for(self, direction: str | None) -> np.ndarray:
        allowed = allowed_codes(direction)
        return np.array([0.0 if c in allowed else -np.inf for c in self.classes], dtype=np.float64)

    def scores(self, matrix) -> np.ndarray:
        """Raw linear scores, shape (n, classes)."""
        return np.asarray(matrix @ self.weights, dtype=np.float64) + self.intercept

    @property
    def real_threshold(self) -> float:
        """Confidence a money-out line without an agreeing MCC needs to post (0 = no such rule);
        chosen on real lines by ``training.risk_controlled_threshold``."""
        return float((self.meta.get("real_calibration") or {}).get("risk_controlled_threshold") or 0.0)

    def mask(self, directions: list[str | None]) -> np.ndarray:
        rows = [0 if d == "debit" else 1 if d == "credit" else 2 for d in directions]
        return self._mask_table[rows]

    def probabilities(self, scores: np.ndarray, directions: list[str | None]) -> np.ndarray:
        return softmax(self.temperature * scores + self.mask(directions))

    def predict(self, events: list[object]) -> Prediction:
        """Best code, calibrated confidence and probabilities for feed-line events."""
        evidence: list = []
        matrix = featurize(events, evidence)
        directions = [e.direction for e in evidence]    # as featurize read it ("none" when absent)
        probs = self.probabilities(self.scores(matrix), directions)
        return self.calibrate(probs, evidence, matrix)

    def calibrate(self, probs: np.ndarray, evidence: list, matrix: object = None) -> Prediction:
        """Calibrated confidence of the top code, then the familiarity caps."""
        unfamiliar = familiarity.signals(evidence, self.vocabulary)
        brand_hits = [self._brand(e.tokens) for e in evidence] if self.brands else None
        design = calibration.meta_features(probs, evidence, self.classes, unfamiliar, brand_hits)
        confidence = calibration.apply(design, self.cal_coef, self.cal_intercept)
        best = probs.argmax(axis=1)
        short = self._short_names
        agrees = np.array([short[b] in e.lexicon for b, e in zip(best.tolist(), evidence, strict=True)], dtype=bool)
        expense = np.array([e.direction != "credit" for e in evidence], dtype=bool)
        ceiling, names = familiarity.caps(unfamiliar, np.array([e.has_mcc for e in evidence], dtype=bool), agrees,
                                          expense)
        real = self.real_threshold
        if real:
            mcc_agrees = np.array([e.mcc_group == short[b] for b, e in zip(best.tolist(), evidence, strict=True)], dtype=bool)
            below = expense & ~mcc_agrees & (confidence < real) & (ceiling > familiarity.CAP_UNCORROBORATED)
            ceiling = np.where(below, familiarity.CAP_UNCORROBORATED, ceiling)
            names = [familiarity.BELOW_REAL_THRESHOLD if b else n for n, b in zip(names, below.tolist(), strict=True)]
        capped = tuple(names)      # the cap that holds the line below posting, whether or not it had to lower it
        confidence = np.minimum(confidence, ceiling)
        return Prediction(best, confidence, probs[np.arange(len(best)), best], probs, tuple(evidence), unfamiliar,
                          capped, matrix)

    def _brand(self, tokens: tuple[str, ...]) -> str | None:
        """``brands_known.lookup`` in this model's table, remembered per token tuple (feeds repeat them)."""
        try:
            return self._brand_hits[tokens]
        except KeyError:
            hit = brands_known.lookup(tokens, self.brands)
            if len(self._brand_hits) < BRAND_HITS_CACHED_MAX:
                self._brand_hits[tokens] = hit
            return hit

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        rows = np.flatnonzero(np.any(self.weights != 0, axis=1)).astype(np.int32)
        np.savez_compressed(directory / "model.npz", classes=np.array(self.classes), rows=rows,
                            coef=self.weights[rows].astype(np.float32), intercept=self.intercept,
                            temperature=np.array(self.temperature), cal_coef=self.cal_coef,
                            cal_intercept=np.array(self.cal_intercept))
        (directory / WARM_TOKENS_FILE).write_text("".join(t + "\n" for t in self.warm_tokens), encoding="utf-8")
        (directory / VOCAB_FILE).write_text("".join(t + "\n" for t in sorted(self.vocabulary)), encoding="utf-8")
        brands_known.save(self.brands, directory)
        meta = {"format_version": FORMAT_VERSION, "n_features": N_FEATURES, **self.meta}
        (directory / "model.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, directory: Path | None = None) -> LinearModel:
        directory = Path(directory) if directory else MODEL_DIR
        try:
            meta = json.loads((directory / "model.json").read_text())
            data = np.load(directory / "model.npz", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ModelArtifactError(f"cannot read model artifact in {directory}: {exc}") from exc
        if meta.get("format_version") != FORMAT_VERSION or meta.get("n_features") != N_FEATURES:
            raise ModelArtifactError(f"artifact format {meta.get('format_version')} / width {meta.get('n_features')}"
                                     f" does not match this code ({FORMAT_VERSION} / {N_FEATURES})")
        classes = [str(c) for c in data["classes"]]
        weights = np.zeros((N_FEATURES, len(classes)), dtype=np.float64)
        weights[data["rows"]] = data["coef"]
        warm_file = directory / WARM_TOKENS_FILE
        warm_tokens = warm_file.read_text(encoding="utf-8").split() if warm_file.exists() else []
        vocab_file = directory / VOCAB_FILE
        vocabulary = vocab_file.read_text(encoding="utf-8").split() if vocab_file.exists() else []
        return cls(classes, weights, data["intercept"], float(data["temperature"]), data["cal_coef"],
                   float(data["cal_intercept"]), meta, warm_tokens, vocabulary, brands_known.load(directory))


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)
