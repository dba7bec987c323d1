"""Known brands: merchant names whose category the training data states, matched as whole names.

The text model knows a brand only through its words and character n-grams, and on real lines a
line made of known words is often wrong (a known word is not a known merchant). This table says
something stronger: the line *starts with the full name* of a brand whose category the training
data gives, without contradiction. It is built offline (``scripts/train_classifier.py``) from
the training brands of ``data/classifier/brands.py`` (held-out merchants excluded) and the
``train`` split of the external real names, and shipped beside the model (``brands.tsv``).

Like the lexicon, a hit never decides: it is one more input of the calibrator
(``calibration.py``), which learns from real calibration lines how far a hit can be trusted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from pipeline.classify.normalize import CHANNEL_WORDS, PROCESSORS, normalize

BRANDS_FILE = "brands.tsv"
KEY_TOKENS_MAX = 3
SINGLE_TOKEN_MIN_CHARS = 4      # a one-word brand shorter than this is too often an ordinary word


def name_tokens(tokens: Iterable[str]) -> tuple[str, ...]:
    """A descriptor's tokens without channel words and payment-gateway names."""
    return tuple(t for t in tokens if t not in CHANNEL_WORDS and t not in PROCESSORS)


def brand_key(name: str) -> tuple[str, ...] | None:
    """The key of a brand name (its tokens), or None when it is too long or too short to match safely."""
    desc = normalize(name)
    tokens = name_tokens(desc.tokens)
    if desc.prefix is not None or not tokens or len(tokens) > KEY_TOKENS_MAX:
        return None
    if len(tokens) == 1 and len(tokens[0]) < SINGLE_TOKEN_MIN_CHARS and tokens[0].isascii():
        return None
    return tokens


def build(entries: Iterable[tuple[str, str]]) -> dict[tuple[str, ...], str]:
    """(name, category) pairs → key → category; keys with two categories are left out."""
    categories: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for name, category in entries:
        key = brand_key(name)
        if key:
            categories[key].add(category)
    return {key: next(iter(cats)) for key, cats in categories.items() if len(cats) == 1}


def lookup(tokens: Sequence[str], table: dict[tuple[str, ...], str]) -> str | None:
    """Category of the longest brand whose full name opens the descriptor's tokens, if any."""
    if not table:
        return None
    names = name_tokens(tokens)
    for n in range(min(KEY_TOKENS_MAX, len(names)), 0, -1):
        category = table.get(names[:n])
        if category is not None:
            return category
    return None


def save(table: dict[tuple[str, ...], str], directory: Path) -> None:
    lines = sorted(" ".join(key) + "\t" + category for key, category in table.items())
    (directory / BRANDS_FILE).write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def load(directory: Path) -> dict[tuple[str, ...], str]:
    path = directory / BRANDS_FILE
    if not path.exists():
        return {}
    table = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, _, category = line.partition("\t")
        if name and category:
            table[tuple(name.split(" "))] = category
    return table
