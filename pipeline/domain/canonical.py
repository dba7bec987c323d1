"""Canonical JSON: ``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` as
UTF-8, written by orjson wherever that gives the very same bytes (several times faster).

Used where the bytes are hashed and the hashes are kept: event fingerprints (dedupe tables) and the
audit chain. ``tests/property/test_validate_properties.py`` and ``tests/unit/test_validate_fast_paths.py``
hold it to the standard library's form.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_ORJSON_SCALARS = frozenset({str, int, bool, type(None)})
_STR_ONLY = frozenset({str})


def canonical_json(value: Any) -> bytes:
    """``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` as UTF-8.

    Fingerprints are stored (dedupe tables), so these bytes must never change. orjson with sorted
    keys writes the same bytes for dicts with ``str`` keys, lists, ``str``, ``int``, ``bool`` and
    ``None``: the same escapes (only ``"``, ``\\`` and U+0000–U+001F, the short forms where JSON
    has them, else lowercase ``\\u00XX``), other characters as UTF-8, keys in code point order
    (UTF-8 byte order is code point order) and integers in decimal. Floats are where the two
    differ (``1e+16`` against ``1e16``), so a value holding any float, or any other type, is
    written by the standard library; so is anything orjson refuses (integers beyond 64 bits, lone
    surrogates, very deep nesting), which keeps the standard library's behaviour for it too.
    """
    return canonical_bytes(value, exact=orjson_exact(value))


def canonical_bytes(value: Any, *, exact: bool) -> bytes:
    """``canonical_json(value)``, told whether ``orjson_exact(value)`` holds (or holds for all but
    parts known to be plain)."""
    if exact:
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def orjson_exact(value: Any) -> bool:
    """True when ``value`` is built only of the types ``canonical_json`` may hand to orjson."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            if not {*map(type, item)} <= _STR_ONLY:
                return False
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        elif kind not in _ORJSON_SCALARS:
            return False
    return True
