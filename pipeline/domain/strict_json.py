"""Strict JSON for input from outside: ``loads_strict(data, max_depth)``.

Everything the pipeline reads from a topic or a file a user hands it goes through here
(validation of raw events, review decisions, ``hera simulate``, ``hera replay``), because the
standard ``json.loads`` accepts what a ledger must not:

* **nesting without limit**: a few kilobytes of ``[[[[…`` exhaust the interpreter's stack
  (``RecursionError``, which is not a ``ValueError`` and so escaped the callers' handlers);
* **repeated keys**, of which the last silently wins (``"amount": "1.00"`` then ``"999999.00"``:
  a reviewer and the ledger would read different events);
* ``NaN`` / ``Infinity`` (not JSON) and floats that overflow to infinity.

Each refusal is a ``StrictJSONError`` (a ``ValueError``) whose ``kind`` says which, so a caller
can map it to its own stable reason code. Pure, no I/O.

Raw events are parsed here once each on the worker's hot path, so the common document takes a
faster exact path: orjson parses it, and its value is taken only where it is known to be the one
the standard decoder gives (see ``_orjson_exact``); everything else, and every refusal with its
message, comes from the standard decoder as before.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

from pipeline.domain.errors import HeraError

__all__ = ["DEPTH_MAX", "StrictJSONError", "json_depth_exceeds", "loads_strict"]

DEPTH_MAX = 64

# kinds of StrictJSONError
NOT_JSON = "not_json"
TOO_DEEP = "too_deep"
DUPLICATE_KEY = "duplicate_key"
NON_FINITE = "non_finite"
NUMBER_RANGE = "number_range"

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


class StrictJSONError(ValueError, HeraError):
    """Input refused by ``loads_strict``; ``kind`` is one of the module's kind constants."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind, self.detail = kind, detail


class _Duplicate(Exception):
    pass


class _NonFinite(Exception):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _Duplicate()
    return obj


def _reject_constant(name: str) -> Any:
    raise _NonFinite(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number too large")
    return value


_UNKNOWN = object()   # what _orjson_exact answers when only the standard decoder can tell

# One decoder for every call: ``json.loads`` with these hooks would build the same one each time.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float, object_pairs_hook=_pairs)


def json_depth_exceeds(text: str, max_depth: int) -> bool:
    """True when ``text`` opens more than ``max_depth`` arrays/objects inside each other.

    Text with at most ``max_depth`` brackets in all cannot nest deeper, so the common case costs two
    ``str.count`` calls; otherwise strings are blanked out and the brackets counted.
    """
    if text.count("[") + text.count("{") <= max_depth:
        return False
    depth = 0
    for match in _BRACKETS.finditer(_STRINGS.sub('""', text)):
        if match.group(0) in "[{":
            depth += 1
            if depth > max_depth:
                return True
        else:
            depth -= 1
    return False


def _orjson_exact(text: str, max_depth: int) -> Any:
    """``orjson.loads(text)`` when that is exactly what the strict standard path gives for ``text``
    (no refusal), else ``_UNKNOWN``.

    Without a backslash in the text (no escapes) a string's value is the text between its quotes in
    both parsers, and every ``"`` in the text opens or closes a string: the text holds
    ``text.count('"') // 2`` strings, each an object key or a string value. The parsed value holds
    as many unless an object repeated a key (the repeat is gone from the dict), so an equal count
    shows that no key was repeated, and then the value nests exactly as deep as the text. orjson
    reads an integer beyond 64 bits as a float and its float parsing is its own, so a value holding
    any float is left to the standard decoder too. Both refuse the same malformed text (a refusal
    here falls back, so its message stays the standard one);
    ``tests/property/test_validate_properties.py`` compares the two over arbitrary text.
    """
    if "\\" in text:
        return _UNKNOWN
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return _UNKNOWN
    strings, depth, level = 0, 0, [value]
    while level:   # one nesting level at a time
        below: list[Any] = []
        nested = False
        for item in level:
            kind = type(item)
            if kind is str:
                strings += 1
            elif kind is dict:
                strings += len(item)
                below += item.values()
                nested = True
            elif kind is list:
                below += item
                nested = True
            elif kind is float:
                return _UNKNOWN
        depth += nested
        level = below
    if depth > max_depth or 2 * strings != text.count('"'):
        return _UNKNOWN
    return value


def loads_strict(data: bytes | bytearray | memoryview | str, max_depth: int = DEPTH_MAX) -> Any:
    """Parse one JSON document strictly (see the module docstring); raise ``StrictJSONError``."""
    if isinstance(data, str):
        text = data
    else:
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StrictJSONError(NOT_JSON, f"not UTF-8 at byte {exc.start}") from None
    if text.startswith("\ufeff"):   # what json.loads checks before it decodes
        raise StrictJSONError(NOT_JSON, "not JSON: Unexpected UTF-8 BOM")
    value = _orjson_exact(text, max_depth)
    if value is not _UNKNOWN:
        return value
    if json_depth_exceeds(text, max_depth):
        raise StrictJSONError(TOO_DEEP, f"JSON nested deeper than {max_depth}")
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise StrictJSONError(NOT_JSON, f"not JSON: {str(exc)[:80]}") from None
    except RecursionError:
        raise StrictJSONError(TOO_DEEP, "JSON nested too deep to parse") from None
    except _Duplicate:
        raise StrictJSONError(DUPLICATE_KEY, "an object repeats a key") from None
    except _NonFinite:
        raise StrictJSONError(NON_FINITE, "NaN and Infinity are not JSON") from None
    except ValueError as exc:   # float overflow, integer with too many digits
        raise StrictJSONError(NUMBER_RANGE, f"number out of range: {str(exc)[:60]}") from None
