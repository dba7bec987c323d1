"""Feature extraction for feed lines: hashed character and word n-grams plus structured hints.

One event becomes a bag of feature strings, hashed into a fixed-width sparse row (no vocabulary
to ship, stable across versions because MurmurHash3 is):

- character 3–5-grams of every token (1–3-grams for CJK/Thai/Hangul), which carry a merchant
  name's shape into names never seen ("TRATTORIA" ~ "TRATTORIE", "APOTHEKE" in "STADTAPOTHEKE");
- word unigrams and bigrams, and the first merchant token;
- the payment-processor prefix (``SQ *`` says little; ``TST*`` says restaurant);
- lexicon hits (``lex:MEALS``) from ``lexicon.py`` keywords in ~30 languages;
- the merchant category code, its category by ISO 18245 range, and its first two digits;
- direction, source, and a coarse USD-equivalent amount band.

Token-level work is cached, and so is a whole description's or counterparty's: real feeds repeat the same
merchants, cities and channel words, and often the very same descriptor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import NamedTuple

import numpy as np
from scipy import sparse
from sklearn.utils import murmurhash3_32

from pipeline.classify.codes import enum_value
from pipeline.classify.lexicon import keyword_index, mcc_category, token_hits
from pipeline.classify.normalize import first_merchant_token, is_unspaced_script, normalize

N_FEATURES = 2**18
TOKEN_CACHE_MAX = 200_000
TEXT_CACHE_MAX = 20_000   # whole descriptions and counterparty names (an entry is under 1 kB)
STRUCT_WEIGHT = 3  # structured hints are repeated so they are not drowned by ~100 n-grams

# Rough units per USD, only to put amounts in comparable bands; a wrong rate costs one band.
_UNITS_PER_USD = {
    "USD": 1, "EUR": 0.92, "GBP": 0.79, "CHF": 0.88, "CAD": 1.36, "AUD": 1.52, "NZD": 1.65, "JPY": 150,
    "CNY": 7.2, "HKD": 7.8, "TWD": 31, "KRW": 1330, "SGD": 1.35, "MYR": 4.7, "IDR": 15700, "THB": 36,
    "VND": 25000, "PHP": 56, "INR": 83, "AED": 3.67, "SAR": 3.75, "KWD": 0.31, "EGP": 48, "ILS": 3.7,
    "TRY": 32, "RUB": 92, "PLN": 4.0, "CZK": 23, "SEK": 10.5, "NOK": 10.7, "DKK": 6.9, "HUF": 360,
    "RON": 4.6, "BRL": 5.0, "MXN": 17, "ARS": 900, "CLP": 930, "COP": 3900, "PEN": 3.7, "ZAR": 18.5,
    "NGN": 1500, "KES": 130, "QAR": 3.64, "BHD": 0.38, "OMR": 0.38, "PKR": 280, "BDT": 110, "LKR": 300,
}


@lru_cache(maxsize=TOKEN_CACHE_MAX)
def feature_index(feature: str) -> int:
    """Column of a feature string: MurmurHash3 (seed 0) modulo the feature-space width."""
    return murmurhash3_32(feature, seed=0, positive=True) % N_FEATURES


@lru_cache(maxsize=TOKEN_CACHE_MAX)
def token_feature_names(token: str) -> dict[int, str]:
    """Column → feature string for one token's features (to name an explanation's columns)."""
    return {feature_index(f): f for f in _token_features(token)}


@lru_cache(maxsize=TOKEN_CACHE_MAX)
def _token_columns(token: str) -> tuple[int, ...]:
    return tuple(feature_index(f) for f in _token_features(token))


@lru_cache(maxsize=TOKEN_CACHE_MAX)
def _token_entry(token: str) -> tuple[tuple[int, ...], frozenset[str]]:
    """Cached columns and lexicon categories of one token (one cache lookup on the hot path)."""
    return _token_columns(token), token_hits(token)


def _token_features(token: str) -> tuple[str, ...]:
    """Word feature, character n-grams and lexicon hits of one token (cached)."""
    feats = ["w:" + token]
    if is_unspaced_script(token):
        n = len(token)
        feats.extend(token[i:i + k] for k in (1, 2, 3) for i in range(n - k + 1))
    else:
        padded = " " + token + " "
        n = len(padded)
        feats.extend(padded[i:i + k] for k in (3, 4, 5) for i in range(n - k + 1))
    feats.extend("lex:" + code for code in sorted(token_hits(token)))
    return tuple(feats)


def amount_band(amount: object, currency: str | None) -> str:
    """Coarse log-scale band of the amount in USD ('' when unknown)."""
    try:
        value = float(amount) if isinstance(amount, (Decimal, int, float)) else float(Decimal(str(amount)))
    except (InvalidOperation, ValueError, TypeError):
        return ""
    rate = _UNITS_PER_USD.get((currency or "").upper())
    if rate is None or value <= 0:
        return ""
    return str(max(-2, min(10, round(2 * math.log10(value / rate)))))


def _text_features(text: str | None, tokens_out: list, strs: list[str], tag: str, expand: bool,
                   lex: set[str]) -> tuple[str, ...]:
    """Token features go to ``tokens_out`` (cached columns, or strings when ``expand``); others to ``strs``."""
    if not text:
        return ()
    desc = normalize(text)
    tokens = desc.tokens
    token_part = _token_features if expand else _token_columns
    if expand:
        for token in tokens:
            tokens_out.extend(_token_features(token))
            lex |= token_hits(token)
    else:
        for token in tokens:
            columns, hits = _token_entry(token)
            tokens_out.extend(columns)
            if hits:
                lex |= hits
    index = keyword_index()
    chain = (desc.prefix, *tokens) if desc.prefix and not desc.processor else tokens
    for k in range(len(chain) - 1):
        pair = chain[k] + " " + chain[k + 1]
        strs.append("b:" + pair)
        codes = index.get(pair)
        if codes:
            strs.extend("lex:" + c for c in codes)
            lex.update(codes)                       # two-word keywords ("ca phe", "rumah makan") count as hits
    if desc.prefix:
        strs.append("pfx:" + desc.prefix)
        tokens_out.extend(token_part(desc.prefix))
        if desc.processor:
            strs.append("proc")
    if desc.had_number:
        strs.append(tag + "num")
    first = first_merchant_token(desc)
    if first:
        strs.append(tag + "first:" + first)
    return tokens


class Evidence(NamedTuple):
    """Per-event facts the calibrator weighs: keyword categories, MCC category, channel, and the
    normalised tokens (for the unfamiliarity signals of ``familiarity.py``)."""

    lexicon: frozenset[str]
    mcc_group: str | None
    has_mcc: bool
    card_feed: bool
    has_counterparty: bool
    tokens: tuple[str, ...] = ()
    direction: str = "none"
    mcc: str | None = None


def event_columns(event: object, evidence_out: list | None = None) -> list[int]:
    """Hashed feature columns of one feed-line event (repeats add weight; the order means nothing)."""
    parts: list[np.ndarray] = []
    _event_parts(event, parts, evidence_out)
    return np.concatenate(parts).tolist()


def event_features(event: object) -> list[str]:
    """Readable feature strings of one event, for inspection and tests (``event_columns``, unhashed)."""
    tokens: list[str] = []
    strs = _event_features(event, tokens)
    return tokens + strs


@lru_cache(maxsize=4096)
def _struct_features(mcc: str | None, direction: str, source: str) -> tuple[tuple[str, ...], str | None]:
    """MCC, direction and source features (repeated ``STRUCT_WEIGHT`` times) and the MCC category."""
    struct = []
    group = None
    if mcc:
        struct += ["mcc:" + mcc, "mcc2:" + mcc[:2]]
        group = mcc_category(mcc)
        if group:
            struct.append("mccg:" + group)
    else:
        struct.append("nomcc")
    struct += ["dir:" + direction, "src:" + source, "ds:" + direction + source]
    return tuple(struct * STRUCT_WEIGHT), group


def _tail_features(empty: bool, band: str, direction: str) -> list[str]:
    """The event's last features: no text at all, and the amount band."""
    strs = ["empty"] if empty else []
    if band:
        strs += ["amt:" + band, "amtd:" + direction + band]
    return strs


def _columns(features: Sequence[str]) -> np.ndarray:
    """Hashed columns of feature strings, as a read-only array (it is cached and shared)."""
    columns = np.fromiter(map(feature_index, features), dtype=np.int32, count=len(features))
    columns.flags.writeable = False
    return columns


@lru_cache(maxsize=TEXT_CACHE_MAX)
def _text_columns(text: str, tag: str) -> tuple[np.ndarray, frozenset[str], tuple[str, ...]]:
    """Columns, keyword categories and tokens of one description (``tag`` "d") or counterparty ("c"),
    cached: feeds repeat the same descriptors, and an event's columns are then a few array lookups."""
    columns: list[int] = []
    strs: list[str] = []
    lex: set[str] = set()
    tokens = _text_features(text, columns, strs, tag, False, lex)
    return np.concatenate([np.array(columns, dtype=np.int32), _columns(strs)]), frozenset(lex), tokens


@lru_cache(maxsize=4096)
def _struct_columns(mcc: str | None, direction: str, source: str) -> tuple[np.ndarray, str | None]:
    features, group = _struct_features(mcc, direction, source)
    return _columns(features), group


@lru_cache(maxsize=4096)
def _tail_columns(empty: bool, band: str, direction: str) -> np.ndarray:
    return _columns(_tail_features(empty, band, direction))


_NO_TEXT: tuple[np.ndarray, frozenset[str], tuple[str, ...]] = (_columns(()), frozenset(), ())


def _structured(event: object) -> tuple[str | None, str, str]:
    """The event's MCC (None when blank), direction and source, as feature values."""
    mcc = getattr(event, "mcc", None)
    mcc = str(mcc).strip() or None if mcc else None
    return mcc, enum_value(getattr(event, "direction", None)) or "none", enum_value(getattr(event, "source", None)) or "none"


def _event_parts(event: object, parts: list[np.ndarray], evidence_out: list | None) -> int:
    """Append the event's columns to ``parts`` as (cached, read-only) arrays; return how many there are."""
    description, counterparty = getattr(event, "description", None), getattr(event, "counterparty", None)
    text, lex, tokens = _text_columns(description, "d") if description else _NO_TEXT
    cp_text, cp_lex, cp_tokens = _text_columns(counterparty, "c") if counterparty else _NO_TEXT
    mcc, direction, source = _structured(event)
    struct, group = _struct_columns(mcc, direction, source)
    tail = _tail_columns(not tokens and not cp_tokens, amount_band(getattr(event, "amount", None),
                                                                   getattr(event, "currency", None)), direction)
    parts += (text, cp_text, struct, tail)
    if evidence_out is not None:
        evidence_out.append(Evidence(lex | cp_lex if cp_lex else lex, group, bool(mcc), source == "card_feed",
                                     bool(counterparty), tokens + cp_tokens if cp_tokens else tokens, direction, mcc))
    return len(text) + len(cp_text) + len(struct) + len(tail)


def _event_features(event: object, tokens_out: list[str]) -> list[str]:
    """``_event_parts``' features as strings: token features to ``tokens_out``, the others returned."""
    strs: list[str] = []
    lex: set[str] = set()
    tokens = _text_features(getattr(event, "description", None), tokens_out, strs, "d", True, lex)
    cp_tokens = _text_features(getattr(event, "counterparty", None), tokens_out, strs, "c", True, lex)
    mcc, direction, source = _structured(event)
    strs.extend(_struct_features(mcc, direction, source)[0])
    return strs + _tail_features(not tokens and not cp_tokens,
                                 amount_band(getattr(event, "amount", None), getattr(event, "currency", None)),
                                 direction)


def featurize(events: Sequence[object], evidence_out: list | None = None) -> sparse.csr_matrix:
    """Hashed, L2-normalised feature rows for a batch of events (duplicate columns summed).

    With ``evidence_out``, also appends each event's ``Evidence`` (for calibration).
    """
    parts: list[np.ndarray] = []
    indptr = np.zeros(len(events) + 1, dtype=np.int64)
    for i, event in enumerate(events, start=1):
        indptr[i] = _event_parts(event, parts, evidence_out)
    np.cumsum(indptr, out=indptr)
    indices = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)
    data = np.ones(len(indices), dtype=np.float64)
    matrix = sparse.csr_matrix((data, indices, indptr), shape=(len(events), N_FEATURES))
    matrix.sum_duplicates()
    _normalize_rows(matrix)
    return matrix


def _normalize_rows(matrix: sparse.csr_matrix) -> None:
    """Scale each row to unit L2 norm in place (an all-zero row stays as it is), as sklearn's
    ``normalize(norm="l2")`` does: the same sums in the same order, without its per-call checks."""
    counts = np.diff(matrix.indptr)
    squares = np.bincount(np.repeat(np.arange(len(counts)), counts), weights=matrix.data * matrix.data,
                          minlength=len(counts))
    norms = np.sqrt(squares)
    norms[norms == 0.0] = 1.0
    matrix.data /= np.repeat(norms, counts)


def warm(tokens: list[str]) -> None:
    """Pre-compute cached features of known tokens (the model's vocabulary) at load time."""
    for token in tokens:
        _token_entry(token)


def token_counts(events) -> dict[str, int]:
    """How often each normalised token occurs (to choose the warm-up vocabulary)."""
    counts: dict[str, int] = {}
    for event in events:
        for text in (getattr(event, "description", None), getattr(event, "counterparty", None)):
            for token in normalize(text).tokens:
                counts[token] = counts.get(token, 0) + 1
    return counts


def clear_caches() -> None:
    """Forget cached token features (for cold-start benchmarks)."""
    _text_columns.cache_clear()
    _token_entry.cache_clear()
    _token_columns.cache_clear()
    token_feature_names.cache_clear()
    feature_index.cache_clear()
