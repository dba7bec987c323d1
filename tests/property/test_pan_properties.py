"""Properties of card-number masking (``pipeline.domain.pan``): a planted PAN, written in any way
a producer might (groups split by any run of spaces, NBSP, thin or ideographic spaces, dashes of
any kind; fullwidth or Arabic-Indic digits; JSON ``\\u`` escapes), never survives masking, in
text, in JSON values and keys at any depth, in raw dead-letter bytes, or in a validated event.
"""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipeline.domain.outcomes import Reason
from pipeline.domain.pan import contains_pan, detection_form, luhn_valid, mask_json, mask_pan_bytes, mask_pans
from pipeline.domain.validate import Rejected, Validated, validate_raw

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SEPARATORS = [" ", "  ", "-", "--", " - ", "\u00a0", "\u00a0\u00a0", "\u202f", "\u2009", "\u3000", "\u2013",
              "\u2014", "\u2212", "\uff0d", "\t"]
DIGIT_FORMS = [str.maketrans("0123456789", "0123456789"),
               str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10))),   # fullwidth
               str.maketrans("0123456789", "".join(chr(0x0660 + d) for d in range(10)))]   # Arabic-Indic
# what may stand next to a PAN: anything but digits, separators and characters that fold to them
FILLER = st.text(st.sampled_from("abcXYZ*#/.,:;()éü€ "), max_size=12).map(lambda s: f"x{s}x" if s else "x")


@st.composite
def pans(draw: Any) -> str:
    """A Luhn-valid PAN of 13-19 digits (ASCII)."""
    body = draw(st.text("0123456789", min_size=12, max_size=18))
    return body + next(str(d) for d in range(10) if luhn_valid(body + str(d)))


@st.composite
def written(draw: Any, pan: str) -> str:
    """``pan`` split into groups with any separators and in any digit form."""
    out, i = [], 0
    while i < len(pan):
        size = draw(st.integers(1, 6))
        out.append(pan[i:i + size])
        i += size
    text = "".join(part + (draw(st.sampled_from(SEPARATORS)) if k < len(out) - 1 else "")
                   for k, part in enumerate(out))
    return text.translate(draw(st.sampled_from(DIGIT_FORMS)))


@st.composite
def planted(draw: Any) -> tuple[str, str]:
    pan = draw(pans())
    return pan, draw(FILLER) + draw(written(pan)) + draw(FILLER)


def digits_of(text: str) -> str:
    return re.sub(r"[^0-9]", "", detection_form(text))


@SETTINGS
@given(planted())
@example(("4111111111111111", "card 4111\u00a0\u00a01111  1111--1111 ok"))
@example(("4111111111111111", "x\uff14\uff11\uff11\uff11 1111 1111 1111x"))
def test_a_planted_pan_never_survives(case: tuple[str, str]) -> None:
    pan, text = case
    masked = mask_pans(text)
    assert pan not in digits_of(masked)
    assert f"{pan[:6]}*{pan[-4:]}" in masked
    assert contains_pan(text) and not contains_pan(masked)


@SETTINGS
@given(st.text(st.sampled_from("abc 0123456789-\u00a0\uff11"), max_size=40))
def test_text_without_a_pan_is_returned_unchanged(text: str) -> None:
    masked = mask_pans(text)
    if masked != text:   # only ever a change that removed a Luhn-valid run of 13-19 digits
        assert "*" in masked and len(digits_of(masked)) < len(digits_of(text))


json_with_pans = st.deferred(lambda: st.one_of(
    planted().map(lambda c: c[1]), st.integers(), st.text(max_size=5),
    st.lists(json_with_pans, max_size=3),
    st.dictionaries(st.one_of(st.text(max_size=4), planted().map(lambda c: c[1])), json_with_pans, max_size=3)))


def all_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for item in value for s in all_strings(item)]
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in [key, *all_strings(item)]]
    return []


@SETTINGS
@given(json_with_pans)
def test_json_values_and_keys_are_masked_at_any_depth(value: Any) -> None:
    for text in all_strings(mask_json(value)):
        assert not contains_pan(text)


@SETTINGS
@given(planted(), st.booleans())
def test_dead_letter_bytes_hold_no_pan(case: tuple[str, str], escaped: bool) -> None:
    pan, text = case
    raw = json.dumps({"event_id": "e", "description": text, "metadata": {text: [text]}},
                     ensure_ascii=escaped).encode()
    for text_out in all_strings(json.loads(mask_pan_bytes(raw))):
        assert pan not in digits_of(text_out) and not contains_pan(text_out)


def test_escaped_digits_and_undecodable_bytes() -> None:
    pan = "4111111111111111"
    escaped = '{"d": "' + "".join(f"\\u{ord(c):04x}" for c in pan) + '"}'
    assert pan not in json.dumps(json.loads(mask_pan_bytes(escaped.encode())))
    raw = b"\xff\xfe card " + pan.encode() + b" \xc3"
    assert mask_pan_bytes(raw) == b"\xff\xfe card 411111*1111 \xc3"   # the rest byte for byte


EVENT = {"schema_version": 1, "event_id": "evt-1", "organization_id": "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
         "source": "card_feed", "occurred_at": "2026-05-01T10:00:00Z", "amount": "12.50", "currency": "USD",
         "direction": "debit", "description": "UBER TRIP"}


@SETTINGS
@given(planted(), st.sampled_from(["description", "counterparty", "reference", "meta_value", "meta_key",
                                   "meta_deep", "line"]))
def test_a_validated_event_holds_no_pan_anywhere(case: tuple[str, str], where: str) -> None:
    pan, text = case
    event: dict[str, Any] = dict(EVENT)
    if where == "meta_value":
        event["metadata"] = {"note": text}
    elif where == "meta_key":
        event["metadata"] = {text: 1}
    elif where == "meta_deep":
        event["metadata"] = {"a": [{"b": {"c": [text, {text: text}]}}]}
    elif where == "line":
        event.update(kind="bill.received", source="erp", lines=[{"description": text, "amount": "12.50"}])
    else:
        event[where] = text[:100]
    checked = validate_raw(json.dumps(event, ensure_ascii=False).encode())
    assert isinstance(checked, Validated), checked
    for text_out in all_strings(checked.body):
        assert pan not in digits_of(text_out) and not contains_pan(text_out)


@SETTINGS
@given(planted())
def test_an_event_id_with_a_pan_is_rejected_with_its_own_reason(case: tuple[str, str]) -> None:
    pan, text = case
    checked = validate_raw(json.dumps({**EVENT, "event_id": text[:128]}, ensure_ascii=False).encode())
    assert isinstance(checked, Rejected) and checked.reason is Reason.EVENT_ID_CONTAINS_PAN
    assert pan not in checked.detail


def test_a_field_name_holding_a_pan_is_masked_in_the_detail() -> None:
    checked = validate_raw(json.dumps({**EVENT, "4111 1111 1111 1111": 1}).encode())
    assert isinstance(checked, Rejected) and checked.reason is Reason.SCHEMA_INVALID
    assert "4111 1111 1111 1111" not in checked.detail and "411111*1111" in checked.detail


@SETTINGS
@given(st.uuids(), planted())
def test_uuids_are_not_card_numbers_but_a_pan_beside_one_is(value: Any, case: tuple[str, str]) -> None:
    pan, text = case
    uuid_text = str(value)
    assert mask_pans(uuid_text) == uuid_text and mask_pans(uuid_text.upper()) == uuid_text.upper()
    masked = mask_pans(f"{uuid_text} {text}")
    assert masked.startswith(uuid_text) and pan not in digits_of(masked[len(uuid_text):])
