"""Explanations: why the model chose a code, as plain data on ``Classification.explanation``.

For a model classification the explanation holds:

- ``top_features``: the few features that pushed the chosen code most (weight × value in the
  linear score: words ``w:…``, bigrams ``b:…``, keyword categories ``lex:…``, MCC ``mcc:…``,
  processor prefixes ``pfx:…``; character n-grams are shown as they are, e.g. ``"taur"``);
- ``lexicon``: keyword categories the descriptor hit; ``mcc_category``: the MCC's category;
- ``unknown_share`` and ``unknown_tokens``: how much of the descriptor the model never saw;
- ``capped_by``: the familiarity cap that lowered the confidence (``familiarity.py``), if any.

Memory classifications carry the key that fired (``memory.py``). The contributions come from one
vectorised product over the batch's feature rows, so explaining costs a few microseconds a line.
"""

from __future__ import annotations

import numpy as np

from pipeline.classify import familiarity
from pipeline.classify.features import column_name

TOP_FEATURES = 4
UNKNOWN_TOKENS_MAX = 5


def model_explanations(prediction, weights: np.ndarray, vocabulary: frozenset[str]) -> list[dict]:
    """One explanation dict per row of ``prediction`` (a ``model.Prediction``)."""
    matrix = prediction.matrix
    n = len(prediction.best)
    tops: list[list[str]] = [[] for _ in range(n)]
    if matrix is not None and matrix.nnz:
        indptr = matrix.indptr
        rows = np.repeat(np.arange(n), np.diff(indptr))
        contrib = matrix.data * weights[matrix.indices, prediction.best[rows]]
        indices = matrix.indices
        for i in range(n):
            lo, hi = indptr[i], indptr[i + 1]
            if hi == lo:
                continue
            part = contrib[lo:hi]
            k = min(TOP_FEATURES, hi - lo)
            order = np.argpartition(-part, k - 1)[:k] if hi - lo > k else np.arange(hi - lo)
            order = order[np.argsort(-part[order])]
            tops[i] = [f"{column_name(int(indices[lo + j]))}:{part[j]:+.2f}" for j in order.tolist() if part[j] > 0]
    out = []
    unfamiliar = prediction.unfamiliar
    for i, e in enumerate(prediction.evidence):
        words = familiarity.merchant_words(e.tokens)
        out.append({
            "method": "model", "top_features": tops[i], "lexicon": sorted(e.lexicon), "mcc_category": e.mcc_group,
            "unknown_share": round(float(unfamiliar[i, 0]), 2) if unfamiliar is not None else None,
            "unknown_tokens": [w for w in words if w not in vocabulary][:UNKNOWN_TOKENS_MAX],
            "capped_by": prediction.capped_by[i] if prediction.capped_by else None,
        })
    return out
