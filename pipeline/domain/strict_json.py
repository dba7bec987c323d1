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
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

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
