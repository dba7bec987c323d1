"""Properties: validation's fast paths give exactly what the straightforward code gives.

The ``reference_*`` functions are the validation code as it was before the fast paths (commit
68da179), kept here word for word as the specification. Over arbitrary input — controls, bidi and
zero-width characters, lone surrogates, combining marks, non-ASCII, digit runs grouped by spaces
and dashes, Luhn-valid or not, floats and huge integers in metadata — the current code must give
the same text, the same card masking, the same rejection (reason and detail), the same event
(values, Decimal digits and exponents, ``model_fields_set``) and the same fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
import unicodedata
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from pipeline.domain import strict_json
from pipeline.domain import validate as v
from pipeline.domain.canonical import canonical_json
from pipeline.domain.money import MINOR_UNITS
from pipeline.domain.outcomes import Reason, Rejected
from pipeline.domain.pan import _SEP, _masked, detection_form
from pipeline.domain.strict_json import StrictJSONError, loads_strict
from schemas.events import RawTransactionV1

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ------------------------------------------------------------------ the reference (commit 68da179)


def reference_sanitise_text(text: str, *, collapse: bool = True) -> str:
    text = v._SURROGATES.sub("\ufffd", text)
    text = unicodedata.normalize("NFC", text)
    text = v._INVISIBLE.sub("", text)
    text = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text)
    if collapse:
        text = " ".join(text.split())
    return reference_mask_pans(text)


def reference_mask_pans(text: str) -> str:
    """Every digit run of the detection form (NFKC, digits of any script as ASCII) masked; the text
    itself when nothing was masked."""
    folded = detection_form(text)
    masked = _masked(folded)
    return text if masked == folded else masked


def reference_event_id_bad(event_id: str) -> bool:
    return (event_id != event_id.strip() or
            any(unicodedata.category(ch) in ("Cc", "Cs") for ch in event_id))


def reference_content_fingerprint(event: RawTransactionV1) -> str:
    body = event.model_dump(mode="json", exclude_none=True)
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def reference_decode(raw: Any, payload_bytes_max: int) -> dict[str, Any]:
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise v._Bad(Reason.ENCODING_INVALID, "payload is not bytes")
    if len(raw) > payload_bytes_max:
        raise v._Bad(Reason.PAYLOAD_TOO_LARGE, f"payload of {len(raw)} bytes exceeds {payload_bytes_max}")
    try:
        text = bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise v._Bad(Reason.ENCODING_INVALID, f"not UTF-8 at byte {exc.start}") from None
    try:
        obj = loads_strict(text, v.JSON_DEPTH_MAX)
    except StrictJSONError as exc:
        raise v._Bad(v._JSON_REASONS[exc.kind], exc.detail) from None
    if not isinstance(obj, dict):
        raise v._Bad(Reason.SCHEMA_INVALID, "event must be a JSON object")
    return obj


def reference_sanitise_event(obj: dict[str, Any]) -> dict[str, Any]:
    clean = dict(obj)
    event_id = clean.get("event_id")
    if isinstance(event_id, str) and reference_mask_pans(event_id) != event_id:
        raise v._Bad(Reason.EVENT_ID_CONTAINS_PAN, "event_id holds a card number")
    if isinstance(event_id, str) and reference_event_id_bad(event_id):
        raise v._Bad(Reason.SCHEMA_INVALID, "event_id: control characters or surrounding whitespace")
    for name in v.TEXT_FIELDS:
        if isinstance(clean.get(name), str):
            clean[name] = reference_sanitise_text(clean[name])
    lines = clean.get("lines")
    if isinstance(lines, list):
        clean["lines"] = [
            {**line, "description": reference_sanitise_text(line["description"])}
            if isinstance(line, dict) and isinstance(line.get("description"), str) else line
            for line in lines
        ]
    if isinstance(clean.get("metadata"), dict):
        clean["metadata"] = reference_sanitise_json(clean["metadata"], 1)
    return clean


def reference_sanitise_json(value: Any, depth: int) -> Any:
    if depth > v.METADATA_DEPTH_MAX:
        raise v._Bad(Reason.SCHEMA_INVALID, f"metadata nested deeper than {v.METADATA_DEPTH_MAX}")
    if isinstance(value, str):
        return reference_sanitise_text(value, collapse=False)
    if isinstance(value, list):
        return [reference_sanitise_json(item, depth + 1) for item in value]
    if isinstance(value, dict):
        clean = {reference_sanitise_text(str(k), collapse=False): reference_sanitise_json(x, depth + 1)
                 for k, x in value.items()}
        if len(clean) != len(value):
            raise v._Bad(Reason.SCHEMA_INVALID, "metadata keys collide once sanitised")
        return clean
    return value


def reference_validate_raw(raw: bytes, *, payload_bytes_max: int = v.PAYLOAD_BYTES_MAX
                           ) -> tuple[RawTransactionV1, str] | Rejected:
    try:
        obj = reference_decode(raw, payload_bytes_max)
        version = obj.get("schema_version")
        if type(version) is int and version != v.SCHEMA_VERSION:
            raise v._Bad(Reason.SCHEMA_VERSION_UNSUPPORTED, f"schema_version {version} is not supported")
        clean = reference_sanitise_event(obj)
    except v._Bad as bad:
        return Rejected(bad.reason, bad.detail)
    try:
        event = RawTransactionV1.model_validate(clean, context={"minor_units": MINOR_UNITS})
    except ValidationError as exc:
        rejected = v._rejection(exc)
        if rejected.reason is Reason.TAX_INVALID:
            rejected = v._without_tax(clean) or rejected
        return rejected
    if event.organization_id == v.NIL_ORG_ID:
        return Rejected(Reason.ORG_ID_NIL, "organization_id is the nil UUID")
    window = v.DEFAULT_WINDOW
    if not window.earliest <= event.occurred_at < window.latest:
        return Rejected(Reason.OCCURRED_AT_IMPLAUSIBLE,
                        f"occurred_at outside [{window.earliest.date()}, {window.latest.date()})")
    return event, reference_content_fingerprint(event)


def reference_quantised(self: RawTransactionV1, table: dict[str, int]) -> RawTransactionV1:
    """``RawTransactionV1._quantised`` as it was: copies the event and every sub-model."""
    if self.currency not in table:
        raise PydanticCustomError("currency_unknown", "currency {c} is not a known ISO 4217 code",
                                  {"c": self.currency})
    quantum = Decimal(1).scaleb(-table[self.currency])

    def q(value: Decimal | None) -> Decimal | None:
        if value is None:
            return None
        exact = value.quantize(quantum)
        if exact != value:
            raise PydanticCustomError("amount_invalid", "{v} has more decimals than {c} allows",
                                      {"v": str(value), "c": self.currency})
        return exact

    def sub(model: BaseModel | None, *names: str) -> Any:
        return None if model is None else model.model_copy(
            update={n: q(getattr(model, n)) for n in names})

    return self.model_copy(update={
        "amount": q(self.amount), "tip": q(self.tip), "fees": q(self.fees),
        "tax": sub(self.tax, "amount"),
        "lines": None if self.lines is None else [sub(line, "amount") for line in self.lines],
        "payments": None if self.payments is None else [sub(p, "amount") for p in self.payments],
        "payroll": sub(self.payroll, "gross", "employee_withholdings", "employer_taxes"),
        "loan": sub(self.loan, "principal", "interest"),
    })


def state(value: Any) -> Any:
    """Everything observable about a validated event: values (Decimals by repr) and fields set."""
    if isinstance(value, BaseModel):
        return (type(value).__name__, sorted(value.model_fields_set),
                {name: state(getattr(value, name)) for name in type(value).model_fields})
    if isinstance(value, list):
        return [state(item) for item in value]
    return repr(value)


# ------------------------------------------------------------------ strategies

SPECIAL = [
    "\x00", "\x07", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1f", "\x7f", "\x80", "\x85", "\x9f",
    "\xa0", "\u00ad", "\u034f", "\u061c", "\u180e", "\u200b", "\u200c", "\u200d", "\u200e", "\u200f",
    "\u2028", "\u2029", "\u202a", "\u202e", "\u2060", "\u2064", "\u2066", "\u2069", "\ufeff", "\ufffd",
    "\ud800", "\udbff", "\udc00", "\udfff", "\u0301", "e\u0301", "\u1100\u1161\u11a8", "\u212b", "\u3000",
    "\U0001f600", "\u0660", "\uff11", " ", "  ", "-", "--", " - ", "*", "0", "9",
]


@st.composite
def card_numbers(draw: Any) -> str:
    """Digit runs of 10–22 digits (Luhn-valid or not), grouped by spaces and dashes."""
    digits = draw(st.text("0123456789", min_size=9, max_size=21))
    check = next(str(d) for d in range(10) if v.luhn_valid(digits + str(d)))
    number = digits + (check if draw(st.booleans()) else draw(st.sampled_from("0123456789")))
    out, i = [], 0
    while i < len(number):
        size = draw(st.integers(1, 8))
        out.append(number[i:i + size])
        i += size
    seps = st.sampled_from(["", " ", "-", " ", "-", "  ", "- ", "\t", "\u00a0"])
    return "".join(part + (draw(seps) if k < len(out) - 1 else "") for k, part in enumerate(out))


FRAGMENTS = st.one_of(
    st.characters(),                                 # any code point but surrogates
    st.integers(0, 0x10FFFF).map(chr),               # any code point at all
    st.sampled_from(SPECIAL),
    st.text(string.printable, max_size=8),
    st.text("0123456789 -", min_size=1, max_size=25),
    card_numbers(),
)
TEXTS = st.lists(FRAGMENTS, max_size=25).map("".join)
ASCII_TEXTS = st.lists(st.one_of(st.text(st.characters(max_codepoint=127), max_size=10), card_numbers()),
                       max_size=10).map("".join)
KEYS = st.one_of(st.text(max_size=6), st.sampled_from(["a", "b", "é", "\U0001f600", "\uffff", "A", ""]))
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-2**64 - 2, 2**64 + 2),
    st.integers(-(10**40), 10**40), st.floats(), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1e16, 1e-5, -0.0, 1e300, 5e-324]), TEXTS,
)
JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(KEYS, inner, max_size=4)), max_leaves=20)


# ------------------------------------------------------------------ text


@SETTINGS
@given(TEXTS, st.booleans())
@example("UBER\x00*TRIP\t\tHELP\n\r  X\u202e\u200b", True)
@example("a\u0085b\x7fc \ud800 Cafe\u0301 4111 1111 1111 1111", False)
def test_sanitise_text_matches_reference(text: str, collapse: bool) -> None:
    assert v.sanitise_text(text, collapse=collapse) == reference_sanitise_text(text, collapse=collapse)


@SETTINGS
@given(ASCII_TEXTS, st.booleans())
@example("\x1c4111111111111111\x1f", True)
def test_sanitise_ascii_text_matches_reference(text: str, collapse: bool) -> None:
    assert v.sanitise_text(text, collapse=collapse) == reference_sanitise_text(text, collapse=collapse)


@SETTINGS
@given(st.one_of(TEXTS, ASCII_TEXTS, card_numbers()))
@example("99" + "4111111111111111")
@example("4111-1111-1111-1111 5555 5555 5555 4444")
def test_mask_pans_matches_reference(text: str) -> None:
    assert v.mask_pans(text) == reference_mask_pans(text)
    if v._PAN_CANDIDATE.search(text) is None:    # the pre-check only ever skips a no-op
        assert reference_mask_pans(text) == text


PLAIN_PAN_CANDIDATE = re.compile(rf"[0-9](?:{_SEP}*[0-9]){{{v.PAN_DIGITS_MIN - 1}}}")


@SETTINGS
@given(st.one_of(TEXTS, ASCII_TEXTS, card_numbers()))
@example("evt-11-00000000")
@example("12-4111111111111")
@example("1 2 3 4 5 6 7 8 9 0 1 2 3")
def test_pan_candidate_matches_where_the_plain_search_does(text: str) -> None:
    """The group-start lookbehind and the possessive separators change the cost, not the answer."""
    assert (v._PAN_CANDIDATE.search(text) is None) == (PLAIN_PAN_CANDIDATE.search(text) is None)


@SETTINGS
@given(st.one_of(TEXTS, ASCII_TEXTS))
@example(" evt")
@example("evt\x85")
@example("evt\ud800")
def test_event_id_check_matches_reference(event_id: str) -> None:
    try:
        v._sanitise_event({"event_id": event_id})
        rejected = False
    except v._Bad as bad:
        if bad.reason is Reason.EVENT_ID_CONTAINS_PAN:
            assert reference_mask_pans(event_id) != event_id
            return
        assert bad.reason is Reason.SCHEMA_INVALID
        rejected = True
    assert rejected == reference_event_id_bad(event_id)


# ------------------------------------------------------------------ strict JSON


def reference_loads_strict(text: str, max_depth: int) -> Any:
    """``strict_json.loads_strict`` on text as it was before its orjson path: the standard decoder only."""
    if text.startswith("\ufeff"):
        raise StrictJSONError(strict_json.NOT_JSON, "not JSON: Unexpected UTF-8 BOM")
    if strict_json.json_depth_exceeds(text, max_depth):
        raise StrictJSONError(strict_json.TOO_DEEP, f"JSON nested deeper than {max_depth}")
    try:
        return strict_json._DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise StrictJSONError(strict_json.NOT_JSON, f"not JSON: {str(exc)[:80]}") from None
    except RecursionError:
        raise StrictJSONError(strict_json.TOO_DEEP, "JSON nested too deep to parse") from None
    except strict_json._Duplicate:
        raise StrictJSONError(strict_json.DUPLICATE_KEY, "an object repeats a key") from None
    except strict_json._NonFinite:
        raise StrictJSONError(strict_json.NON_FINITE, "NaN and Infinity are not JSON") from None
    except ValueError as exc:
        raise StrictJSONError(strict_json.NUMBER_RANGE, f"number out of range: {str(exc)[:60]}") from None


def typed(value: Any) -> Any:
    """A parsed value with the exact type of every part and its keys in order."""
    if isinstance(value, dict):
        return ("dict", [(key, typed(item)) for key, item in value.items()])
    if isinstance(value, list):
        return ("list", [typed(item) for item in value])
    return (type(value).__name__, repr(value))


def outcome(parse: Any, text: str, max_depth: int) -> Any:
    try:
        return typed(parse(text, max_depth))
    except StrictJSONError as exc:
        return (exc.kind, exc.detail)


SPACE = st.sampled_from(["", "", " ", "\n", "\t", "\r", "  ", "\x0c", "\xa0"])
JSON_NUMBERS = st.sampled_from(["0", "-0", "1", "-1", "01", "1.5", "1e5", "1E400", "-1e-400", "1.", ".5", "+1",
                                "18446744073709551615", "18446744073709551616", "-9223372036854775809",
                                "9" * 30, "NaN", "Infinity", "-Infinity", "true", "false", "null", "nul", "1 2"])
JSON_STRINGS = st.one_of(st.text(max_size=6).map(lambda t: json.dumps(t, ensure_ascii=False)),
                         st.text(max_size=6).map(json.dumps),
                         st.sampled_from(['"a"', '"b"', '""', '"\\u0061"', '"\\ud800"', '"\x01"', '"\x7f"',
                                          '"\u2028"', '"a\\"b"', '"x']))


@st.composite
def json_texts(draw: Any) -> str:
    """JSON documents as text, mostly valid but with repeated keys, odd numbers and whitespace, any
    nesting, and sometimes a character inserted or removed."""
    def render(depth: int) -> str:
        kind = draw(st.integers(0, 4 if depth < 40 else 1))
        if kind == 0:
            return draw(JSON_NUMBERS)
        if kind == 1:
            return draw(JSON_STRINGS)
        if kind == 2:
            items = [render(depth + 1) for _ in range(draw(st.integers(0, 3)))]
            return "[" + ",".join(draw(SPACE) + item + draw(SPACE) for item in items) + "]"
        keys = draw(st.lists(st.sampled_from(['"a"', '"b"', '"c"', '"é"', '""', '"a"']), max_size=4))
        pairs = [draw(SPACE) + key + draw(SPACE) + ":" + draw(SPACE) + render(depth + 1) for key in keys]
        return "{" + ",".join(pairs) + "}"
    text = draw(SPACE) + render(0) + draw(SPACE)
    if text and draw(st.integers(0, 4)) == 0:
        at = draw(st.integers(0, len(text) - 1))
        text = text[:at] + draw(st.sampled_from(["", ",", "}", "]", '"', "\\", ":", "x"])) + text[at + 1:]
    return text


@SETTINGS
@given(st.one_of(json_texts(), json_texts(), st.text(max_size=30),
                 st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                               st.dictionaries(KEYS, inner, max_size=4)),
                              max_leaves=20).map(lambda value: json.dumps(value, ensure_ascii=False))),
       st.integers(1, 8))
@example('{"a": 1, "a": 1}', 8)
@example('{"a": [[[[1]]]], "a": 1}', 2)
@example('{"a": "b:c\\"", "b": 1}', 8)
@example('{"a": 18446744073709551616}', 8)
@example('{"a": 1e400}', 8)
@example("\ufeff{}", 8)
def test_loads_strict_matches_the_standard_decoder(text: str, max_depth: int) -> None:
    """Where orjson's value is taken, it is the standard decoder's, type for type and key for key; every
    refusal (kind and detail) is the standard one."""
    assert outcome(loads_strict, text, max_depth) == outcome(reference_loads_strict, text, max_depth)


# ------------------------------------------------------------------ canonical JSON


def stdlib_canonical(value: Any) -> bytes | str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except Exception as exc:  # the same exception must come out of canonical_json
        return type(exc).__name__


@SETTINGS
@given(JSON)
@example({"b": 1e16, "a": [1e-5, -0.0]})
@example({"big": 2**64, "small": -2**63 - 1, "ok": 2**64 - 1})
@example({"\ud800": 1})
@example({"z": "\x00\x1f\"\\\u2028", "é": {"\U0001f600": 1, "\uffff": 2}})
def test_canonical_json_is_the_stdlib_form(value: Any) -> None:
    try:
        ours: bytes | str = canonical_json(value)
    except Exception as exc:
        ours = type(exc).__name__
    assert ours == stdlib_canonical(value)


@SETTINGS
@given(st.dictionaries(st.one_of(KEYS, st.integers(), st.none()), SCALARS, max_size=4))
def test_canonical_json_with_odd_keys_is_the_stdlib_form(value: dict[Any, Any]) -> None:
    try:
        ours: bytes | str = canonical_json(value)
    except Exception as exc:
        ours = type(exc).__name__
    assert ours == stdlib_canonical(value)


# ------------------------------------------------------------------ whole events

CURRENCIES = ["USD", "usd", "EUR", "JPY", "KWD", "BHD", "CLF", "XYZ", "US"]
AMOUNTS = st.one_of(
    st.sampled_from(["1", "1.0", "1.00", "1.000", "1.0000", "12.5", "0", "0.00", "0.10", "1000", "1E+3", "-1",
                     "999999999999999.99", "42.505", "7.1234", "0.00000001", " 1", 1, 1.5, None]),
    st.integers(0, 10**9).map(str),
    st.builds(lambda i, f: f"{i}.{f}", st.integers(0, 10**6), st.text("0123456789", min_size=1, max_size=5)),
)


@st.composite
def raw_events(draw: Any) -> bytes:
    """Mostly well-formed events with arbitrary text and metadata; sometimes broken on purpose."""
    text = draw(st.sampled_from([TEXTS, ASCII_TEXTS]))
    event: dict[str, Any] = {
        "schema_version": draw(st.sampled_from([1, 1, 1, 1, 2, "1", True])),
        "event_id": draw(st.one_of(st.just("evt-1"), text)),
        "organization_id": draw(st.sampled_from(["3f2504e0-4f89-11d3-9a0c-0305e82c3301",
                                                 "3F2504E0-4F89-11D3-9A0C-0305E82C3301", "nope"])),
        "source": draw(st.sampled_from(["card_feed", "bank_feed", "pos", "erp", "api", "fax"])),
        "occurred_at": draw(st.sampled_from(["2024-05-01T10:00:00Z", "2024-05-01t10:00:00.5+02:00",
                                             "2024-02-30T10:00:00Z"])),
        "amount": draw(AMOUNTS), "currency": draw(st.sampled_from(CURRENCIES)),
        "direction": "debit", "description": draw(text),
    }
    optional = {
        "counterparty": text, "reference": text, "smart_code": text,
        "tip": AMOUNTS, "fees": AMOUNTS,
        "tax": st.one_of(st.fixed_dictionaries({"rate": st.sampled_from(["0.05", "5", "0.123456789"])}),
                         st.fixed_dictionaries({"amount": AMOUNTS}), st.just({})),
        "lines": st.lists(st.fixed_dictionaries({"amount": AMOUNTS}, optional={"description": text,
                                                 "category": st.sampled_from(["service", "food"])}),
                          max_size=3),
        "payments": st.lists(st.fixed_dictionaries({"method": st.sampled_from(["card", "cash"]),
                                                    "amount": AMOUNTS}), max_size=2),
        "payroll": st.fixed_dictionaries({"gross": AMOUNTS, "employee_withholdings": AMOUNTS,
                                          "employer_taxes": AMOUNTS}),
        "loan": st.fixed_dictionaries({"principal": AMOUNTS, "interest": AMOUNTS}),
        "metadata": st.dictionaries(KEYS, JSON, max_size=4),
    }
    for name, strategy in optional.items():
        if draw(st.integers(0, 3)) == 0:
            event[name] = draw(strategy)
    event = {k: x for k, x in event.items() if x is not None}
    data = json.dumps(event, ensure_ascii=draw(st.booleans()))
    return data.encode("utf-8", "surrogatepass")   # a raw lone surrogate is invalid UTF-8: also a case


RAWS = st.one_of(raw_events(), raw_events(), raw_events(), st.binary(max_size=64),
                 st.sampled_from([b"\xef\xbb\xbf{}", b"[" * 5000, b'{"a": NaN}', b'{"a": 1e999}', b"{} x",
                                  b'{"a": ' + b"1" * 5000 + b"}", b"  {}  ", b'"text"', b""]))


@SETTINGS
@given(RAWS)
def test_validate_raw_matches_reference(raw: bytes) -> None:
    ours = v.validate_raw(raw)
    theirs = reference_validate_raw(raw)
    if isinstance(theirs, Rejected):
        assert ours == theirs
        return
    assert isinstance(ours, v.Validated)
    event, fingerprint = theirs
    assert ours.fingerprint == fingerprint == reference_content_fingerprint(ours.event)
    assert state(ours.event) == state(event)
    assert ours.body == event.model_dump(mode="json", exclude_none=True)
    assert json.dumps(ours.body) == json.dumps(event.model_dump(mode="json", exclude_none=True))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(RAWS, max_size=2 * v.STAGE_RUN + 3))
def test_validate_many_is_validate_raw_for_each(raws: list[bytes]) -> None:
    many = v.validate_many(raws)
    one_by_one = [v.validate_raw(raw) for raw in raws]
    assert many == one_by_one
    for a, b in zip(many, one_by_one, strict=True):
        if isinstance(a, v.Validated) and isinstance(b, v.Validated):
            assert a.body == b.body and state(a.event) == state(b.event)


@SETTINGS
@given(raw_events())
def test_quantised_matches_reference(raw: bytes) -> None:
    """Keeping unchanged models gives the same event, digits and fields set as copying them all."""
    try:
        clean = reference_sanitise_event(reference_decode(raw, v.PAYLOAD_BYTES_MAX))
        plain = RawTransactionV1.model_validate(clean)   # the schema without the currency table
    except (v._Bad, ValidationError):
        return
    try:
        expected: Any = state(reference_quantised(plain, MINOR_UNITS))
    except PydanticCustomError as exc:
        expected = (exc.type, exc.message())
    try:
        got: Any = state(RawTransactionV1.model_validate(clean, context={"minor_units": MINOR_UNITS}))
    except ValidationError as exc:
        [error] = exc.errors()
        got = (error["type"], error["msg"])
    assert got == expected


@pytest.mark.parametrize(("amount", "currency", "expected"), [
    ("12.5", "USD", "12.50"), ("12.50", "USD", "12.50"), ("1000.00", "JPY", "1000"), ("1.5", "KWD", "1.500"),
    ("0", "USD", "0.00"), ("7", "JPY", "7"),
])
def test_quantised_keeps_or_fixes_the_exponent(amount: str, currency: str, expected: str) -> None:
    clean = {"schema_version": 1, "event_id": "e", "organization_id": "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
             "source": "erp", "occurred_at": "2024-05-01T10:00:00Z", "amount": "1", "currency": currency,
             "tip": amount, "tax": {"rate": "0.05"}, "lines": [{"amount": amount}]}
    event = RawTransactionV1.model_validate(clean, context={"minor_units": MINOR_UNITS})
    assert str(event.tip) == expected and str(event.lines[0].amount) == expected  # type: ignore[index]
    assert state(event) == state(reference_quantised(RawTransactionV1.model_validate(clean), MINOR_UNITS))
