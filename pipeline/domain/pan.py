"""Card numbers (PANs): finding and masking them in text, in JSON values and in raw bytes.

A PAN here is 13–19 digits that pass the Luhn check, written with any run of separators between
groups of digits: spaces of any kind (NBSP, thin and ideographic spaces, tabs), dashes and hyphens
of any kind, or control characters. Detection looks through Unicode compatibility forms first
(NFKC: fullwidth digits, compatibility spaces and dashes) and reads every decimal digit of any
script (Arabic-Indic, Devanagari …) as its value, so a card number cannot hide behind a different
way of writing the same digits.

A masked PAN is its first six and last four digits around one ``*`` (``411111*1111``), the form
PCI DSS 3.3 allows to be displayed. Masking works on whole digit groups: the longest span of
groups starting at a group that is a Luhn-valid 13–19 digit number is one PAN. A number inside a
longer unseparated digit string (an IBAN, a 20-digit reference) is not read as a card number,
nor is a UUID (``95892913-6085-56aa-…`` would otherwise read as 14 dash-grouped digits).

Pure: values in, values out. Used by validation (every text field, metadata values and keys at any
depth, rejection details), by dead letters (``mask_pan_bytes``) and by ``event_id`` screening
(``contains_pan``). See docs and SECURITY.md for what this protects.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

__all__ = ["PAN_DIGITS_MAX", "PAN_DIGITS_MIN", "contains_pan", "luhn_valid", "mask_json", "mask_pan_bytes",
           "mask_pans"]

PAN_DIGITS_MIN, PAN_DIGITS_MAX = 13, 19
_SEP = r"[\s\x00-\x1f\x7f\-\u2010-\u2015\u2212\ufe58\ufe63\uff0d]"
_DIGIT_RUN = re.compile(rf"(?<![0-9])[0-9]+(?:{_SEP}+[0-9]+)*(?![0-9])")
# PAN_DIGITS_MIN digits with only separators between them: every digit run that holds a card number
# contains such a stretch, so text without one has nothing to mask. Only whether it matches is used,
# and two changes make that answer cheap without changing it (a plain search on ``evt-11-00000000``
# tries every digit as a start and backtracks through each): a stretch is looked for only from the
# first digit of a group (``(?<![0-9])``: a stretch starting inside a group means one starts at the
# group's first digit too), and separators are taken possessively (``*+``: no separator is a digit,
# so giving one back can never let a digit match).
_PAN_CANDIDATE = re.compile(rf"(?<![0-9])[0-9](?:{_SEP}*+[0-9]){{{PAN_DIGITS_MIN - 1}}}")
_GROUP_SPLIT = re.compile(rf"({_SEP}+)")
_UNICODE_DIGIT = re.compile(r"[^\x00-\x7f]")
_UUID = re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
                   r"(?![0-9A-Fa-f])")


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check of a string of ASCII digits."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def mask_pans(text: str) -> str:
    """``text`` with every PAN masked as ``123456*7890``; ``text`` itself when it holds none.

    ASCII text is searched as it is. Other text is searched in its detection form (NFKC, every
    decimal digit as ASCII); when that form holds a PAN, the masked detection form is returned.
    """
    if text.isascii():
        if _PAN_CANDIDATE.search(text) is None:
            return text
        return _masked(text)
    folded = detection_form(text)
    if _PAN_CANDIDATE.search(folded) is None:
        return text
    masked = _masked(folded)
    return text if masked == folded else masked


def _masked(text: str) -> str:
    """Every digit run masked, UUIDs left whole."""
    if "-" not in text or _UUID.search(text) is None:
        return _DIGIT_RUN.sub(_mask_run, text)
    out, at = [], 0
    for uuid in _UUID.finditer(text):
        out += [_DIGIT_RUN.sub(_mask_run, text[at:uuid.start()]), uuid.group(0)]
        at = uuid.end()
    out.append(_DIGIT_RUN.sub(_mask_run, text[at:]))
    return "".join(out)


def contains_pan(text: str) -> bool:
    """True when ``mask_pans`` would mask something in ``text``."""
    return mask_pans(text) != text


def detection_form(text: str) -> str:
    """NFKC, then every Unicode decimal digit replaced by its ASCII digit (same length as NFKC)."""
    folded = unicodedata.normalize("NFKC", text)
    if folded.isascii():
        return folded
    return _UNICODE_DIGIT.sub(_ascii_digit, folded)


def _ascii_digit(match: re.Match[str]) -> str:
    char = match.group(0)
    value = unicodedata.decimal(char, None)
    return char if value is None else chr(48 + value)


def _mask_run(match: re.Match[str]) -> str:
    run = match.group(0)
    if sum(ch.isdigit() for ch in run) < PAN_DIGITS_MIN:
        return run
    tokens = _GROUP_SPLIT.split(run)
    groups, seps = tokens[0::2], tokens[1::2]
    out: list[str] = []
    i = 0
    while i < len(groups):
        best, digits = -1, ""
        for j in range(i, len(groups)):    # longest span of whole groups that is a card number
            digits += groups[j]
            if len(digits) > PAN_DIGITS_MAX:
                break
            if len(digits) >= PAN_DIGITS_MIN and luhn_valid(digits):
                best = j
        if best >= 0:
            pan = "".join(groups[i:best + 1])
            out.append(f"{pan[:6]}*{pan[-4:]}")
            i = best + 1
        else:
            out.append(groups[i])
            i += 1
        if i < len(groups):
            out.append(seps[i - 1])
    return "".join(out)


def mask_json(value: Any) -> Any:
    """A JSON value with every string and every object key passed through ``mask_pans``.

    Iterative (no recursion limit to hit on deep input); keys that become equal once masked keep
    the last value, as a JSON object with repeated keys would.
    """
    if isinstance(value, str):
        return mask_pans(value)
    if not isinstance(value, dict | list):
        return value
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any]] = [(value, root, 0)]
    while stack:
        item, parent, slot = stack.pop()
        if isinstance(item, dict):
            out_d: dict[str, Any] = {}
            parent[slot] = out_d
            for key, sub in item.items():
                masked_key = mask_pans(key) if isinstance(key, str) else key
                out_d[masked_key] = None
                stack.append((sub, out_d, masked_key))
        elif isinstance(item, list):
            out_l: list[Any] = [None] * len(item)
            parent[slot] = out_l
            stack.extend((sub, out_l, index) for index, sub in enumerate(item))
        else:
            parent[slot] = mask_pans(item) if isinstance(item, str) else item
    return root[0]


def mask_pan_bytes(original: bytes) -> bytes:
    """The bytes of a record with every PAN masked: what a dead letter keeps as its value.

    The bytes are read as UTF-8 (bytes that are not UTF-8 are kept as they are) and every PAN
    written in the text is masked in place, so the rest stays byte for byte as the producer wrote
    it. A PAN spelt with JSON escapes (``\\u0034``, or groups split by ``\\t``) is not visible in
    the text: when the text holds a backslash and is JSON, its decoded strings and keys are checked
    too, and if one holds a PAN the value is written again as JSON with every string and key masked.
    """
    text = bytes(original).decode("utf-8", errors="surrogateescape")
    masked = mask_pans(text)
    if "\\" in masked:
        try:
            value = json.loads(masked)
        except (ValueError, RecursionError):
            value = None
        if value is not None:
            remasked = mask_json(value)
            if remasked != value:
                masked = json.dumps(remasked, ensure_ascii=False, separators=(",", ":"))
    return masked.encode("utf-8", errors="surrogateescape")
