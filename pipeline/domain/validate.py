"""Validation and sanitising of raw event bytes: ``validate_raw(raw) -> Validated | Rejected``.

The first stage of the pipeline. Bad input is data, not an exception: a ``Rejected`` carries
exactly one ``Reason`` (the highest in ``outcomes.Reason`` order when several apply) and a short
detail that never echoes field values. Sanitising happens *before* anything is stored:

* control characters become spaces, invisible bidi/zero-width characters are dropped, lone
  surrogates become U+FFFD, text is NFC-normalised and (outside ``metadata``) whitespace is
  collapsed; length limits are enforced on the sanitised text;
* card numbers (13–19 Luhn-valid digits, grouped by any run of spaces or dashes, seen through
  NFKC; see ``pipeline.domain.pan``) are masked as first six + ``*`` + last four in every text
  field, in every string and every key of ``metadata`` at any depth, and in rejection details;
  an ``event_id`` holding one is rejected ``EVENT_ID_CONTAINS_PAN`` (it would be stored as a key).

Hostile input is refused, never crashed on: JSON is parsed by ``strict_json.loads_strict``
(depth limit ``JSON_DEPTH_MAX`` -> ``JSON_TOO_DEEP``, a repeated key -> ``JSON_DUPLICATE_KEY``), the
nil organisation id is ``ORG_ID_NIL``, and ``occurred_at`` outside ``OccurredAtWindow`` is
``OCCURRED_AT_IMPLAUSIBLE``.

An event whose ``schema_version`` is an integer other than 1 is ``SCHEMA_VERSION_UNSUPPORTED``
before any v1 schema check: the v1 schema says nothing about another version's fields.

Pure: no I/O, no clock. ``content_fingerprint`` hashes the canonical JSON of the sanitised event
so that a reused ``event_id`` with different content can be told from an exact redelivery.

This runs once per event on the hot path, so the common cases take exact fast paths: JSON without
escapes, floats or repeated keys is parsed by orjson (``strict_json``), ASCII text skips the Unicode
steps that cannot change it, text that cannot hold 13 digits skips the card search, the event is
dumped to JSON once (``Validated.body``, reused for the envelope; written by ``json_body``, not
pydantic's serializer) and its canonical form is written by orjson where that gives the same bytes
as the standard library; an event whose amounts already fit its currency is not copied.
Each fast path says why it is exact; ``tests/property/test_validate_properties.py`` checks them
against the straightforward forms over arbitrary input.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from pipeline.domain import strict_json
from pipeline.domain.canonical import canonical_bytes, orjson_exact
from pipeline.domain.money import MINOR_UNITS
from pipeline.domain.outcomes import Reason, Rejected
from pipeline.domain.pan import (  # noqa: F401  (_DIGIT_RUN, _mask_run: the plain form the property tests use)
    _DIGIT_RUN,
    _PAN_CANDIDATE,
    PAN_DIGITS_MAX,
    PAN_DIGITS_MIN,
    _mask_run,
    contains_pan,
    luhn_valid,
    mask_pans,
)
from pipeline.domain.strict_json import StrictJSONError, loads_strict
from schemas.events import SCHEMA_VERSION, RawTransactionV1

__all__ = ["PAYLOAD_BYTES_MAX", "OccurredAtWindow", "Rejected", "Validated", "body_fingerprint",
           "content_fingerprint", "luhn_valid", "mask_pans", "sanitise_text", "validate_many", "validate_raw"]

PAYLOAD_BYTES_MAX = 65536
METADATA_DEPTH_MAX = 16
JSON_DEPTH_MAX = 32          # the whole event; the schema's deepest field (metadata) is 16 below it
DETAIL_LENGTH_MAX = 200
TEXT_FIELDS = ("description", "counterparty", "reference", "smart_code")
STAGE_RUN = 128   # events per stage in validate_many
NIL_ORG_ID = "00000000-0000-0000-0000-000000000000"

_ERROR_REASONS = {
    "amount_invalid": Reason.AMOUNT_INVALID,
    "currency_unknown": Reason.CURRENCY_UNKNOWN,
    "tax_invalid": Reason.TAX_INVALID,
    "schema_version_unsupported": Reason.SCHEMA_VERSION_UNSUPPORTED,
}
_JSON_REASONS = {
    strict_json.NOT_JSON: Reason.ENCODING_INVALID,
    strict_json.NON_FINITE: Reason.ENCODING_INVALID,
    strict_json.NUMBER_RANGE: Reason.SCHEMA_INVALID,
    strict_json.TOO_DEEP: Reason.JSON_TOO_DEEP,
    strict_json.DUPLICATE_KEY: Reason.JSON_DUPLICATE_KEY,
}
_PRECEDENCE = {reason: index for index, reason in enumerate(Reason)}
_CONTEXT = {"minor_units": MINOR_UNITS}   # read, never written, by the schema's validators
# ``RawTransactionV1.model_validate(clean, context=...)`` without its Python wrapper (which only passes
# its other arguments, all left at their defaults here, on to this very call)
_validate_event = RawTransactionV1.__pydantic_validator__.validate_python
_SURROGATES = re.compile(r"[\ud800-\udfff]")
_INVISIBLE = re.compile(r"[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
# General category Cc is exactly U+0000–U+001F and U+007F–U+009F, and Cs exactly the surrogates
# U+D800–U+DFFF (both sets are frozen by Unicode's stability policy; a test checks every code point
# against ``unicodedata.category``), so these classes match what a per-character lookup would.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROLS_OR_SURROGATES = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_ASCII_CONTROLS_TO_SPACE = {code: " " for code in (*range(0x20), 0x7F)}


@dataclass(frozen=True, slots=True)
class OccurredAtWindow:
    """The plausible business dates: ``earliest <= occurred_at < latest`` (settings
    ``HERA_OCCURRED_AT_EARLIEST`` / ``HERA_OCCURRED_AT_LATEST``). Outside it an event is rejected
    ``OCCURRED_AT_IMPLAUSIBLE`` instead of reaching the ledger (year 0001 or 9999 poisons a batch)."""

    earliest: datetime = datetime(1970, 1, 1, tzinfo=UTC)
    latest: datetime = datetime(2100, 1, 1, tzinfo=UTC)


DEFAULT_WINDOW = OccurredAtWindow()


@dataclass(frozen=True, slots=True)
class Validated:
    """A sanitised, schema-valid event and the fingerprint of its content.

    ``body`` is the event as ``model_dump(mode="json", exclude_none=True)``: the dict the
    fingerprint hashes and the validated envelope carries, dumped once for both.
    """

    event: RawTransactionV1
    fingerprint: str
    body: dict[str, Any] = field(repr=False, compare=False)


class _Bad(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def validate_raw(raw: bytes, *, payload_bytes_max: int = PAYLOAD_BYTES_MAX,
                 window: OccurredAtWindow = DEFAULT_WINDOW) -> Validated | Rejected:
    """Decode, sanitise and validate one raw event; never raises on any input bytes."""
    return _finished(_modelled(_cleaned(raw, payload_bytes_max)), window)


def validate_many(raws: Sequence[bytes], *, payload_bytes_max: int = PAYLOAD_BYTES_MAX,
                  window: OccurredAtWindow = DEFAULT_WINDOW) -> list[Validated | Rejected]:
    """``[validate_raw(raw) for raw in raws]``, computed stage by stage.

    Each stage runs over a run of ``STAGE_RUN`` events before the next one starts. The results are
    the same (every stage is a pure function of one event), but decoding, pydantic's validator and
    its serializer each keep their code and data in the CPU caches for a whole run instead of
    evicting each other on every event, which saves about a third of the CPU time per event.
    """
    out: list[Validated | Rejected] = []
    for start in range(0, len(raws), STAGE_RUN):
        cleaned = [_cleaned(raw, payload_bytes_max) for raw in raws[start:start + STAGE_RUN]]
        modelled = [_modelled(clean) for clean in cleaned]
        out += [_finished(event, window) for event in modelled]
    return out


def _cleaned(raw: bytes, payload_bytes_max: int) -> dict[str, Any] | Rejected:
    """Stage 1: the decoded, version-checked and sanitised event object."""
    try:
        obj = _decode(raw, payload_bytes_max)
        version = obj.get("schema_version")
        if type(version) is int and version != SCHEMA_VERSION:
            raise _Bad(Reason.SCHEMA_VERSION_UNSUPPORTED, f"schema_version {version} is not supported")
        return _sanitise_event(obj)
    except _Bad as bad:
        return Rejected(bad.reason, bad.detail)


def _modelled(clean: dict[str, Any] | Rejected) -> RawTransactionV1 | Rejected:
    """Stage 2: the schema-valid event (a rejection from stage 1 passes through)."""
    if isinstance(clean, Rejected):
        return clean
    try:
        return _validate_event(clean, context=_CONTEXT)
    except ValidationError as exc:
        rejected = _rejection(exc)
        if rejected.reason is Reason.TAX_INVALID:
            # A bad tax object is a field error, so the whole-event checks (currency, decimals per
            # currency) never ran; they rank higher, so look again without the tax.
            rejected = _without_tax(clean) or rejected
        return rejected


def _finished(event: RawTransactionV1 | Rejected, window: OccurredAtWindow) -> Validated | Rejected:
    """Stage 3: the plausibility checks, then the event dumped to JSON once, for its fingerprint and
    its envelope."""
    if isinstance(event, Rejected):
        return event
    if event.organization_id == NIL_ORG_ID:
        return Rejected(Reason.ORG_ID_NIL, "organization_id is the nil UUID")
    if not window.earliest <= event.occurred_at < window.latest:
        return Rejected(Reason.OCCURRED_AT_IMPLAUSIBLE,
                        f"occurred_at outside [{window.earliest.date()}, {window.latest.date()})")
    body = event.json_body()
    return Validated(event=event, fingerprint=body_fingerprint(body), body=body)


def _without_tax(clean: dict[str, Any]) -> Rejected | None:
    try:
        RawTransactionV1.model_validate({k: v for k, v in clean.items() if k != "tax"},
                                        context={"minor_units": MINOR_UNITS})
    except ValidationError as exc:
        rejected = _rejection(exc)
        return rejected if _PRECEDENCE[rejected.reason] < _PRECEDENCE[Reason.TAX_INVALID] else None
    return None


def content_fingerprint(event: RawTransactionV1) -> str:
    """sha256 (hex) of the canonical JSON of the sanitised event (sorted keys, no nulls)."""
    return body_fingerprint(event.json_body())


def body_fingerprint(body: dict[str, Any]) -> str:
    """``content_fingerprint`` of an event, given its ``model_dump(mode="json", exclude_none=True)``.

    Only ``metadata`` is looked through for what orjson would write differently (see
    ``canonical.canonical_json``): by the schema every other field dumps to a string, the integer
    ``schema_version`` (always 1), or objects and arrays of strings
    (``tests/unit/test_validate_fast_paths.py`` checks the schema for this).
    """
    metadata = body.get("metadata")
    exact = metadata is None or orjson_exact(metadata)
    return hashlib.sha256(canonical_bytes(body, exact=exact)).hexdigest()


def sanitise_text(text: str, *, collapse: bool = True) -> str:
    """Control characters -> space, invisible characters dropped, NFC, card numbers masked.

    ASCII text (most of it) takes a shorter, exact path: it holds no surrogates and no invisible
    characters (both lie outside ASCII), it is already NFC, and its only control characters are
    U+0000–U+001F and U+007F — exactly the ASCII characters ``str.isprintable`` rejects.
    """
    if text.isascii():
        if not text.isprintable():
            text = text.translate(_ASCII_CONTROLS_TO_SPACE)
    else:
        text = _SURROGATES.sub("\ufffd", text)
        text = unicodedata.normalize("NFC", text)
        text = _INVISIBLE.sub("", text)
        text = _CONTROLS.sub(" ", text)
    if collapse:
        text = " ".join(text.split())
    return mask_pans(text)


def _decode(raw: Any, payload_bytes_max: int) -> dict[str, Any]:
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise _Bad(Reason.ENCODING_INVALID, "payload is not bytes")
    if len(raw) > payload_bytes_max:
        raise _Bad(Reason.PAYLOAD_TOO_LARGE, f"payload of {len(raw)} bytes exceeds {payload_bytes_max}")
    try:
        text = bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Bad(Reason.ENCODING_INVALID, f"not UTF-8 at byte {exc.start}") from None
    try:
        obj = loads_strict(text, JSON_DEPTH_MAX)
    except StrictJSONError as exc:
        raise _Bad(_JSON_REASONS[exc.kind], exc.detail) from None
    if not isinstance(obj, dict):
        raise _Bad(Reason.SCHEMA_INVALID, "event must be a JSON object")
    return obj


def _sanitise_event(obj: dict[str, Any]) -> dict[str, Any]:
    clean = dict(obj)
    event_id = clean.get("event_id")
    if isinstance(event_id, str) and contains_pan(event_id):
        raise _Bad(Reason.EVENT_ID_CONTAINS_PAN, "event_id holds a card number")
    if isinstance(event_id, str) and (event_id != event_id.strip() or _holds_controls(event_id)):
        raise _Bad(Reason.SCHEMA_INVALID, "event_id: control characters or surrounding whitespace")
    for name in TEXT_FIELDS:
        if isinstance(text := clean.get(name), str):
            clean[name] = sanitise_text(text)
    lines = clean.get("lines")
    if isinstance(lines, list):
        clean["lines"] = [
            {**line, "description": sanitise_text(line["description"])}
            if isinstance(line, dict) and isinstance(line.get("description"), str) else line
            for line in lines
        ]
    if isinstance(clean.get("metadata"), dict):
        clean["metadata"] = _sanitise_json(clean["metadata"], 1)
    return clean


def _holds_controls(text: str) -> bool:
    """True when ``text`` holds a control character or a surrogate (categories Cc and Cs); for ASCII
    (which has no surrogates) that is exactly ``not text.isprintable()``, as ``sanitise_text`` uses."""
    if text.isascii():
        return not text.isprintable()
    return _CONTROLS_OR_SURROGATES.search(text) is not None


def _sanitise_json(value: Any, depth: int) -> Any:
    if depth > METADATA_DEPTH_MAX:
        raise _Bad(Reason.SCHEMA_INVALID, f"metadata nested deeper than {METADATA_DEPTH_MAX}")
    if isinstance(value, str):
        return sanitise_text(value, collapse=False)
    if isinstance(value, list):
        return [_sanitise_json(item, depth + 1) for item in value]
    if isinstance(value, dict):
        clean = {sanitise_text(str(k), collapse=False): _sanitise_json(v, depth + 1) for k, v in value.items()}
        if len(clean) != len(value):
            raise _Bad(Reason.SCHEMA_INVALID, "metadata keys collide once sanitised")
        return clean
    return value


def _rejection(exc: ValidationError) -> Rejected:
    ranked = sorted(
        ((_ERROR_REASONS.get(err["type"], Reason.SCHEMA_INVALID), err) for err in exc.errors()),
        key=lambda pair: _PRECEDENCE[pair[0]])
    reason, err = ranked[0]
    where = ".".join(str(part) for part in err["loc"]) or "event"
    detail = f"{where}: {err['msg']}"
    return Rejected(reason, mask_pans(detail)[:DETAIL_LENGTH_MAX])   # a field name may hold a card number
