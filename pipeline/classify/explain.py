"""Explanations: why the model chose a code, as plain data on ``Classification.explanation``.

For a model classification the explanation holds:

- ``top_features``: the few features that pushed the chosen code most (weight × value in the
  linear score: words ``w:…``, bigrams ``b:…``, keyword categories ``lex:…``, MCC ``mcc:…``,
  processor prefixes ``pfx:…``; character n-grams are shown as they are, e.g. ``"taur"``).
  Features are hashed; a column is named from the line's own tokens, keyword categories and MCC
  category, and left out when none of them hashes there (word bigrams, for one);
- ``lexicon``: keyword categories the descriptor hit; ``mcc_category``: the MCC's category;
  ``mcc_description``: its ISO 18245 description (``mcc_iso18245.json``, from the MIT-licensed
  PyPI package iso18245);
- ``unknown_share`` and ``unknown_tokens``: how much of the descriptor the model never saw;
- ``capped_by``: the familiarity cap that lowered the confidence (``familiarity.py``), if any.

Memory classifications carry the key that fired (``memory.py``). The contributions come from one
vectorised product over the batch's feature rows, so explaining costs a few microseconds a line.
"""

from __future__ import annotations

import numpy as np

from pipeline.classify import familiarity
from pipeline.classify.features import feature_index, token_feature_names
from pipeline.classify.lexicon import mcc_description

TOP_FEATURES = 4
UNKNOWN_TOKENS_MAX = 5


def _name_in_row(column: int, evidence) -> str | None:
    """The feature of this line that hashes to ``column`` (None if it is not a token/keyword/MCC one)."""
    for token in evidence.tokens:
        name = token_feature_names(token).get(column)
        if name is not None:
            return name
    for code in evidence.lexicon:
        if feature_index("lex:" + code) == column:
            return "lex:" + code
    if evidence.mcc_group and feature_index("mccg:" + evidence.mcc_group) == column:
        return "mccg:" + evidence.mcc_group
    return None


def _top_columns(prediction, weights: np.ndarray, rows: list[int]) -> list[list[str]]:
    """Per row of ``rows``, the ``TOP_FEATURES`` named features with the largest positive contribution to
    the chosen code."""
    matrix = prediction.matrix
    tops: list[list[str]] = [[] for _ in rows]
    if matrix is None or not matrix.nnz or not rows:
        return tops
    position = np.full(matrix.shape[0], -1)      # a row's place in ``rows`` (-1: not asked for)
    position[rows] = np.arange(len(rows))
    row_of = position[np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))]
    asked = np.flatnonzero(row_of >= 0)          # the asked rows' entries, row by row, columns in order
    columns, row_of = matrix.indices[asked], row_of[asked]
    contrib = matrix.data[asked] * weights[columns, prediction.best[rows][row_of]]
    keep = np.flatnonzero(contrib > 0)
    # one sort for the whole batch: by row, then by contribution, largest first
    order = keep[np.lexsort((-contrib[keep], row_of[keep]))]
    sorted_rows = row_of[order]
    starts = np.searchsorted(sorted_rows, np.arange(len(rows)))
    rank = np.arange(len(order)) - starts[sorted_rows]
    chosen = order[rank < 3 * TOP_FEATURES]      # spare candidates for generic or unnamed columns
    evidence = prediction.evidence
    for r, col, value in zip(row_of[chosen].tolist(), columns[chosen].tolist(), contrib[chosen].tolist(), strict=True):
        if len(tops[r]) < TOP_FEATURES:
            name = _name_in_row(col, evidence[rows[r]])
            if name is not None:
                tops[r].append(f"{name}:{value:+.2f}")
    return tops


def model_explanations(prediction, weights: np.ndarray, vocabulary: frozenset[str],
                       rows: list[int] | None = None) -> list[dict]:
    """One explanation dict per row of ``prediction`` (a ``model.Prediction``), or per row of ``rows``."""
    rows = list(range(len(prediction.best))) if rows is None else rows
    tops = _top_columns(prediction, weights, rows)
    unfamiliar = prediction.unfamiliar
    shares = np.round(unfamiliar[rows, 0], 2).tolist() if unfamiliar is not None else [None] * len(rows)
    capped = prediction.capped_by or (None,) * len(prediction.best)
    evidence = prediction.evidence
    out = []
    for k, row in enumerate(rows):
        e = evidence[row]
        out.append({"method": "model", "top_features": tops[k], "lexicon": sorted(e.lexicon),
                    "mcc_category": e.mcc_group, "mcc_description": mcc_description(e.mcc),
                    "unknown_share": shares[k],
                    "unknown_tokens": list(familiarity.unknown_words(e.tokens, vocabulary)[:UNKNOWN_TOKENS_MAX]),
                    "capped_by": capped[row]})
    return out
