"""Signals that a line is unfamiliar to the model, and the confidence caps they impose.

A linear model scores every line, including lines made only of words it never saw: then its
score comes from character n-grams and priors (a burger bar called "... FUEL SHACK" scores as
FUEL), and its calibrated confidence is an answer to a question about *familiar* lines. These
signals say how far a line is from what the model knows:

- ``unknown_share``: share of merchant tokens (channel words excluded) outside the model's
  vocabulary (tokens seen at least twice in training, ``vocab.txt`` in the artifact);
- ``no_known``: no merchant token is known at all;
- ``no_lexicon``: no keyword of ``lexicon.py`` matched;
- ``foreign_script``: a token in a script other than Latin (Thai, CJK, Cyrillic, Arabic ...);
- ``short``: one merchant token or none (a bare name carries the least evidence).

They enter the calibrator as features (``calibration.py``), which learns from *real* lines how
much each costs, and they cap confidence outright (``caps``), whatever the calibrator says, when
nothing independent corroborates the model on a line without an MCC:

- ``nothing_known``: no known token and no keyword → ``CAP_NOTHING_KNOWN``;
- ``lexicon_disagrees``: keywords matched, but none of the chosen code's → ``CAP_UNCORROBORATED``;
- ``unknown_words``: no keyword, and some merchant token unknown → ``CAP_UNCORROBORATED``.

Caps apply to money out only: on money in, a customer's name is always new.

A last cap comes from real data (``model.LinearModel.calibrate``): a money-out line whose MCC
does not confirm the chosen code (or that has none) posts only at a confidence of at least the
risk-controlled threshold measured on real names without MCC (``training.py``); below it, it is capped
(``below_real_threshold``). Lines whose MCC agrees keep the per-code thresholds.

On real names (``data/classifier/external/``) the model's confident answers without such
corroboration were right about 94 % of the time, with it about 99 %: see BENCHMARKS.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from pipeline.classify.normalize import CHANNEL_WORDS, PROCESSORS

N_SIGNALS = 5
# Caps on calibrated confidence (the auto-post thresholds are at least 0.85, see training.py).
CAP_NOTHING_KNOWN = 0.5    # no known token, no keyword, no MCC: the score is guesswork
CAP_UNCORROBORATED = 0.8   # below every auto-post threshold: review, with the model's suggestion
BELOW_REAL_THRESHOLD = "below_real_threshold"


def merchant_words(tokens: Iterable[str]) -> list[str]:
    return [t for t in tokens if len(t) > 1 and t not in CHANNEL_WORDS and t not in PROCESSORS]


_CACHE_MAX = 200_000
_CACHES: dict[int, dict[tuple[str, ...], tuple[float, float, float, float, tuple[str, ...]]]] = {}


def _of_tokens(tokens: tuple[str, ...], vocabulary: frozenset[str]) -> tuple[float, float, float, float, tuple[str, ...]]:
    """(unknown_share, no_known, foreign_script, short, unknown words) of one token tuple, cached
    per vocabulary (feeds repeat the same descriptors)."""
    cache = _CACHES.setdefault(id(vocabulary), {})
    hit = cache.get(tokens)
    if hit is None:
        words = merchant_words(tokens)
        unknown = tuple(w for w in words if w not in vocabulary)
        share = len(unknown) / len(words) if words else 1.0
        hit = (share, float(len(unknown) == len(words)), float(any(not w.isascii() for w in words)),
               float(len(words) <= 1), unknown)
        if len(cache) < _CACHE_MAX:
            cache[tokens] = hit
    return hit


def unknown_words(tokens: tuple[str, ...], vocabulary: frozenset[str]) -> tuple[str, ...]:
    return _of_tokens(tokens, vocabulary)[4]


def signals(evidence: Sequence, vocabulary: frozenset[str]) -> np.ndarray:
    """Rows of (unknown_share, no_known, no_lexicon, foreign_script, short), floats."""
    rows = []
    for e in evidence:
        share, none_known, foreign, short, _ = _of_tokens(e.tokens, vocabulary)
        rows.append((share, none_known, float(not e.lexicon), foreign, short))
    return np.array(rows, dtype=np.float64).reshape(len(evidence), N_SIGNALS)


def caps(sig: np.ndarray, has_mcc: np.ndarray, lexicon_agrees: np.ndarray,
         expense: np.ndarray) -> tuple[np.ndarray, list[str | None]]:
    """Per row: the confidence ceiling (1.0 = none) and the name of the cap that set it.

    ``lexicon_agrees``: a keyword of the chosen code matched the line. ``expense``: money out (the
    caps concern expense categories; a customer's name on money in is always new).
    """
    free = ~has_mcc & ~lexicon_agrees & expense
    no_lexicon = sig[:, 2] > 0
    nothing = free & no_lexicon & (sig[:, 1] > 0)
    disagrees = free & ~no_lexicon
    unknown = free & no_lexicon & (sig[:, 0] > 0) & ~nothing
    ceiling = np.where(nothing, CAP_NOTHING_KNOWN, np.where(disagrees | unknown, CAP_UNCORROBORATED, 1.0))
    names = ["nothing_known" if n else "lexicon_disagrees" if d else "unknown_words" if u else None
             for n, d, u in zip(nothing.tolist(), disagrees.tolist(), unknown.tolist(), strict=True)]
    return ceiling, names
