"""The facts validation's fast paths rest on, checked exhaustively or against the schema.

(The fast paths themselves are compared with the straightforward code over arbitrary input in
``tests/property/test_validate_properties.py``.)
"""

from __future__ import annotations

import hashlib
import json
import sys
import unicodedata
from typing import Any

import pytest

from pipeline.devtools.sample import sample_events
from pipeline.domain import strict_json
from pipeline.domain import validate as v
from pipeline.domain.canonical import canonical_json
from pipeline.domain.outcomes import Reason, Rejected
from pipeline.envelopes import Record, dumps
from pipeline.flow import validate_batch
from schemas.events import RawTransactionV1


def test_character_classes_are_the_unicode_categories() -> None:
    """``_CONTROLS`` is exactly category Cc, ``_CONTROLS_OR_SURROGATES`` exactly Cc and Cs."""
    for code in range(sys.maxunicode + 1):
        ch = chr(code)
        category = unicodedata.category(ch)
        assert (v._CONTROLS.match(ch) is not None) == (category == "Cc"), hex(code)
        assert (v._CONTROLS_OR_SURROGATES.match(ch) is not None) == (category in ("Cc", "Cs")), hex(code)


def test_ascii_needs_only_the_control_mapping() -> None:
    """ASCII: no surrogates or invisible characters, NFC already, controls = not printable."""
    for code in range(128):
        ch = chr(code)
        assert v._SURROGATES.match(ch) is None and v._INVISIBLE.match(ch) is None
        assert unicodedata.normalize("NFC", ch) == ch
        control = unicodedata.category(ch) == "Cc"
        assert (not ch.isprintable()) == control == (code in v._ASCII_CONTROLS_TO_SPACE)
    everything = "".join(map(chr, range(128)))
    assert unicodedata.normalize("NFC", everything) == everything


def _json_kinds(node: dict[str, Any], defs: dict[str, Any]) -> set[str | None]:
    if "$ref" in node:
        return _json_kinds(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
    if "anyOf" in node:
        return set().union(*(_json_kinds(option, defs) for option in node["anyOf"]))
    kind = node.get("type")   # no type: anything at all
    if kind == "object":
        assert node.get("additionalProperties") is False
        return {"object"}.union(*(_json_kinds(p, defs) for p in node.get("properties", {}).values()))
    if kind == "array":
        return {"array"} | _json_kinds(node["items"], defs)
    return {kind}


def test_only_metadata_can_dump_to_a_json_number() -> None:
    """What lets ``body_fingerprint`` look for floats in ``metadata`` only."""
    schema = RawTransactionV1.model_json_schema(mode="serialization")
    for name, prop in schema["properties"].items():
        if name == "metadata":
            continue
        kinds = _json_kinds(prop, schema["$defs"])
        if name == "schema_version":
            assert kinds == {"integer"}   # and the schema takes only 1
        else:
            assert kinds <= {"string", "null", "object", "array"}, (name, kinds)


@pytest.mark.parametrize("payload", [
    "\ufeff{}".encode(), b"\xef\xbb\xbf" + b'{"a": 1}', b"{} x", b"", b"  ", b"{", b'{"a": 1e999}',
    b'{"a": ' + b"7" * 5000 + b"}", b'{"a": -Infinity}', b'{"a": "\\ud800"}',
])
def test_decoder_gives_the_json_loads_answers(payload: bytes) -> None:
    """Below the depth limit and without repeated keys, strict parsing answers as json.loads did."""
    try:
        obj = json.loads(payload.decode(), parse_constant=_reject_constant, parse_float=strict_json._finite_float)
        expected: Any = obj if isinstance(obj, dict) else "not a dict"
    except _NonFinite:
        expected = (Reason.ENCODING_INVALID, "NaN and Infinity are not JSON")
    except json.JSONDecodeError as exc:
        expected = (Reason.ENCODING_INVALID, f"not JSON: {str(exc)[:80]}")
    except ValueError as exc:
        expected = (Reason.SCHEMA_INVALID, f"number out of range: {str(exc)[:60]}")
    try:
        got: Any = v._decode(payload, v.PAYLOAD_BYTES_MAX)
    except v._Bad as bad:
        got = (bad.reason, bad.detail)
    if expected == "not a dict":
        assert got == (Reason.SCHEMA_INVALID, "event must be a JSON object")
    elif payload.startswith(b"\xef\xbb\xbf"):
        assert got == (Reason.ENCODING_INVALID, "not JSON: Unexpected UTF-8 BOM")
    else:
        assert got == expected


@pytest.mark.parametrize(("payload", "expected"), [
    (b"[" * 5000, Reason.JSON_TOO_DEEP), (b'{"a":' * 40 + b"1" + b"}" * 40, Reason.JSON_TOO_DEEP),
    (b'{"amount": "1.00", "amount": "999999.00"}', Reason.JSON_DUPLICATE_KEY),
    (b'{"m": {"k": 1, "k": 1}}', Reason.JSON_DUPLICATE_KEY),
])
def test_hostile_json_has_its_own_reason(payload: bytes, expected: Reason) -> None:
    with pytest.raises(v._Bad) as bad:
        v._decode(payload, v.PAYLOAD_BYTES_MAX)
    assert bad.value.reason is expected


class _NonFinite(Exception):
    pass


def _reject_constant(name: str) -> Any:
    raise _NonFinite(name)


def test_bom_is_rejected() -> None:
    result = v.validate_raw("\ufeff{}".encode())
    assert result == Rejected(Reason.ENCODING_INVALID, "not JSON: Unexpected UTF-8 BOM")


def test_validated_envelopes_are_unchanged() -> None:
    """The envelope's event is the event's own JSON dump and the fingerprint hashes it as before; the
    original bytes are not in it (a stage that needs them reads them back by ``source``)."""
    raws = list(sample_events(600, seed=11, bad_share=0.1))
    records = [Record("raw", i % 3, i, None, raw) for i, raw in enumerate(raws)]
    result, _, _ = validate_batch(records, known_orgs=None, payload_bytes_max=v.PAYLOAD_BYTES_MAX)
    validated = iter(e for e in result.emits if e.topic_key == "validated")
    for rec in records:
        checked = v.validate_raw(rec.value)
        if isinstance(checked, Rejected):
            continue
        event = checked.event
        body = event.model_dump(mode="json", exclude_none=True)
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        expected = {"v": 1, "event": body, "fingerprint": hashlib.sha256(canonical.encode()).hexdigest(),
                    "source": {"topic": rec.topic, "partition": rec.partition, "offset": rec.offset}}
        assert next(validated).value == dumps(expected)
    assert next(validated, None) is None


def test_ascii_pairs_are_nfc() -> None:
    """No two ASCII characters compose, so ASCII text of any length is already NFC."""
    for a in range(128):
        for b in range(128):
            pair = chr(a) + chr(b)
            assert unicodedata.normalize("NFC", pair) == pair


def test_orjson_writes_every_character_and_key_order_as_the_stdlib() -> None:
    """The string escapes and key order ``canonical_json`` relies on, for every code point."""
    chars = [chr(code) for code in range(sys.maxunicode + 1) if not 0xD800 <= code <= 0xDFFF]
    text = "".join(chars)
    assert canonical_json(text) == json.dumps(text, ensure_ascii=False).encode("utf-8")
    keyed = {ch: 0 for ch in reversed(chars[::3] + chars[1::3] + chars[2::3])}
    stdlib = json.dumps(keyed, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert canonical_json(keyed) == stdlib


def _typed(value: Any) -> Any:
    """A value with the exact type of every part, keys in order: what ``==`` alone would not show."""
    if isinstance(value, dict):
        return ("dict", [(key, _typed(item)) for key, item in value.items()])
    if isinstance(value, list):
        return ("list", [_typed(item) for item in value])
    return (type(value).__name__, value)


def test_json_body_is_the_model_dump_type_for_type() -> None:
    """``json_body`` writes what pydantic's serializer writes: the same keys in the same order, and plain
    str / int values (not the enums or Decimals they came from)."""
    extra = {"schema_version": 1, "event_id": "e", "organization_id": "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
             "source": "pos", "occurred_at": "2024-05-01T10:00:00.5+02:00", "amount": "12.5", "currency": "usd",
             "kind": "pos.daily_summary", "tax": {"rate": "0.05"}, "tip": "1", "fees": "0.10",
             "lines": [{"amount": "1.5", "category": "service", "description": "x"}],
             "payments": [{"method": "card", "amount": "2"}], "adjustment": "gain",
             "payroll": {"gross": "3", "employee_withholdings": "1", "employer_taxes": "0.5"},
             "loan": {"principal": "1", "interest": "0.01"}}
    raws = [*sample_events(400, seed=11), json.dumps(extra).encode(),
            json.dumps({**extra, "metadata": {"a": None, "b": [1.5, {"c": None}]}}).encode()]
    bodies = 0
    for index, raw in enumerate(raws):
        checked = v.validate_raw(raw)
        assert isinstance(checked, v.Validated) or index < 400
        if isinstance(checked, v.Validated):
            expected = checked.event.model_dump(mode="json", exclude_none=True)
            assert _typed(checked.body) == _typed(expected)
            assert _typed(checked.event.json_body()) == _typed(expected)
            bodies += 1
    assert bodies > 300


def test_currency_check_is_the_pattern() -> None:
    """``_currency`` tests three ASCII letters with str methods; the pattern the JSON Schema states."""
    from schemas import events

    def plain(value: str) -> bool:
        return len(value) == 3 and value.isascii() and value.isalpha()

    for code in range(sys.maxunicode + 1):
        for value in (chr(code) + "AB", "A" + chr(code) + "B", chr(code) * 3):
            assert plain(value) == (events._CURRENCY_RE.fullmatch(value) is not None), hex(code)
    for value in ("", "US", "USDX", "USD\n", "\nUSD", "usd", "U D"):
        assert plain(value) == (events._CURRENCY_RE.fullmatch(value) is not None), value
