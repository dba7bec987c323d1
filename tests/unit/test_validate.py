"""validate_raw: one reason per rejection (by precedence), sanitising, card masking, fingerprints."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from pipeline.domain.outcomes import Reason
from pipeline.domain.validate import (
    Rejected,
    Validated,
    content_fingerprint,
    luhn_valid,
    mask_pans,
    sanitise_text,
    validate_raw,
)
from schemas.events import RawTransactionV1

ORG = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
VISA = "4111111111111111"


def event(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "schema_version": 1, "event_id": "evt-1", "organization_id": ORG, "source": "card_feed",
        "occurred_at": "2024-05-01T10:00:00Z", "amount": "42.50", "currency": "USD",
        "direction": "debit", "description": "UBER *TRIP HELP.UBER.COM",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


def raw(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def ok(obj: Any) -> RawTransactionV1:
    result = validate_raw(raw(obj))
    assert isinstance(result, Validated), result
    return result.event


def reason(payload: bytes | Any, **kwargs: Any) -> Reason:
    result = validate_raw(payload if isinstance(payload, bytes) else raw(payload), **kwargs)
    assert isinstance(result, Rejected), result
    assert result.detail and VISA not in result.detail
    return result.reason


def test_valid_feed_event() -> None:
    ev = ok(event())
    assert ev.amount == Decimal("42.50") and ev.currency == "USD" and ev.organization_id == ORG
    assert ev.occurred_at.tzinfo is not None


def test_valid_structured_event_round_trips() -> None:
    ev = ok(event(source="erp", kind="invoice.issued", direction=..., description=..., amount="1050",
                  tax={"rate": "0.05"}, lines=[{"description": "Consulting", "amount": "1000.00",
                                                 "category": "service"}], metadata={"po": "PO-7"}))
    assert ev.amount == Decimal("1050.00") and str(ev.amount) == "1050.00"
    again = RawTransactionV1.model_validate(ev.model_dump(mode="json", exclude_none=True))
    assert again == ev


@pytest.mark.parametrize(("payload", "expected"), [
    (b"\xff\xfe{}", Reason.ENCODING_INVALID),
    (b"{not json", Reason.ENCODING_INVALID),
    (b'{"amount": NaN}', Reason.ENCODING_INVALID),
    (b"[" * 5000, Reason.JSON_TOO_DEEP),
    (b"[1, 2]", Reason.SCHEMA_INVALID),
    (b'"text"', Reason.SCHEMA_INVALID),
])
def test_undecodable(payload: bytes, expected: Reason) -> None:
    assert reason(payload) is expected


def test_payload_too_large_wins() -> None:
    big = event(metadata={"blob": "x" * 70_000})
    assert reason(big) is Reason.PAYLOAD_TOO_LARGE
    assert reason(b"\xff" * 100, payload_bytes_max=10) is Reason.PAYLOAD_TOO_LARGE


@pytest.mark.parametrize("changes", [
    {"event_id": ...}, {"organization_id": "not-a-uuid"}, {"source": "fax"}, {"kind": "invoice.paid"},
    {"occurred_at": "2024-05-01T10:00:00"}, {"occurred_at": "2024-02-30T10:00:00Z"}, {"occurred_at": 1714557600},
    {"direction": ...}, {"description": ...}, {"description": "x" * 501}, {"counterparty": "y" * 201},
    {"mcc": "58123"}, {"unexpected": 1}, {"lines": [{"amount": "1.00", "colour": "red"}]},
    {"lines": [{"amount": "1.00", "category": "food"}]}, {"payments": [{"method": "cheque", "amount": "1"}]},
    {"metadata": {"blob": "x" * 11_000}}, {"schema_version": "1"}, {"schema_version": True},
    {"event_id": "a" * 129}, {"event_id": "bad\x00id"}, {"currency": 840}, {"description": "\x00\x01 \t"},
    {"metadata": [1, 2]},
])
def test_schema_invalid(changes: dict[str, Any]) -> None:
    assert reason(event(**changes)) is Reason.SCHEMA_INVALID


def test_schema_version_unsupported() -> None:
    assert reason(event(schema_version=2)) is Reason.SCHEMA_VERSION_UNSUPPORTED
    assert reason({"schema_version": 3, "anything": "else"}) is Reason.SCHEMA_VERSION_UNSUPPORTED


@pytest.mark.parametrize("changes", [
    {"amount": 42.5}, {"amount": 42}, {"amount": "1e3"}, {"amount": "-1.00"}, {"amount": "0"},
    {"amount": "NaN"}, {"amount": "42.505"}, {"amount": "1,000.00"}, {"tip": "-1"},
    {"currency": "JPY", "amount": "100.5"}, {"currency": "KWD", "amount": "1.0005"},
    {"lines": [{"amount": "1.001"}]},
])
def test_amount_invalid(changes: dict[str, Any]) -> None:
    assert reason(event(**changes)) is Reason.AMOUNT_INVALID


@pytest.mark.parametrize("currency", ["XYZ", "US", "EURO", "", "$$$"])
def test_currency_unknown(currency: str) -> None:
    assert reason(event(currency=currency)) is Reason.CURRENCY_UNKNOWN


def test_currency_case_normalised_and_amount_quantised() -> None:
    ev = ok(event(currency="kwd", amount="1.5"))
    assert ev.currency == "KWD" and str(ev.amount) == "1.500"
    assert str(ok(event(currency="JPY", amount="1000.00")).amount) == "1000"


@pytest.mark.parametrize("tax", [{"rate": "5"}, {"rate": 0.05}, {}, {"rate": "0.05", "amount": "1.00"}])
def test_tax_invalid(tax: dict[str, Any]) -> None:
    assert reason(event(tax=tax)) is Reason.TAX_INVALID


def test_precedence_schema_before_amount_before_currency() -> None:
    assert reason(event(amount="abc", unexpected=1)) is Reason.SCHEMA_INVALID
    assert reason(event(amount="abc", currency="XYZ")) is Reason.AMOUNT_INVALID
    assert reason(event(currency="XYZ", tax={"rate": "9"})) is Reason.CURRENCY_UNKNOWN
    assert reason(event(amount="1.001", tax={"rate": "9"})) is Reason.AMOUNT_INVALID
    assert reason(event(tax={"rate": "9"}, unexpected=1)) is Reason.SCHEMA_INVALID
    assert reason(event(amount="1.00", currency="XYZ", direction=...)) is Reason.SCHEMA_INVALID


def test_pan_masked_everywhere() -> None:
    spaced = "4111 1111 1111 1111"
    ev = ok(event(description=f"PAYMENT CARD {spaced} THANKS", counterparty=f"card {VISA}",
                  reference="5555-5555-5555-4444", lines=[{"description": f"n {VISA}", "amount": "42.50"}],
                  metadata={"note": f"pan {VISA}", "nested": [{"deep": VISA}], "n": 5}))
    dumped = json.dumps(ev.model_dump(mode="json"))
    assert VISA not in dumped and spaced not in dumped and "5555555555554444" not in dumped
    assert ev.description == "PAYMENT CARD 411111*1111 THANKS"
    assert ev.reference == "555555*4444" and ev.metadata == {"note": "pan 411111*1111",
                                                             "nested": [{"deep": "411111*1111"}], "n": 5}


def test_mask_pans_leaves_non_cards_alone() -> None:
    assert luhn_valid(VISA) and not luhn_valid("4111111111111112")
    assert mask_pans("ref 4111111111111112 and 123456") == "ref 4111111111111112 and 123456"
    assert mask_pans("Amex 378282246310005.") == "Amex 378282*0005."
    assert mask_pans(f"{VISA} 20 USD") == "411111*1111 20 USD"
    assert mask_pans("99" + VISA) == "99" + VISA   # a card number inside a longer number is not one


def test_control_characters_and_whitespace() -> None:
    assert sanitise_text("UBER\x00*TRIP\t\tHELP\n\r  X\u202e\u200b") == "UBER *TRIP HELP X"
    assert sanitise_text("Cafe\u0301") == "Café"
    assert sanitise_text("a\u0085b\x7fc") == "a b c"
    assert sanitise_text("line1\nline2", collapse=False) == "line1 line2"
    ev = ok(event(description="  CAFE\x07  DE   FLORE  ", counterparty="\ud800x"))
    assert ev.description == "CAFE DE FLORE" and ev.counterparty == "\ufffdx"


def test_length_limits_apply_after_sanitising() -> None:
    assert ok(event(description="a " + " " * 600 + "b")).description == "a b"


def test_fingerprint_is_canonical() -> None:
    a = ok(event(amount="42.5"))
    b = ok(dict(reversed(list(event(amount="42.50", tip=None).items()))))
    c = ok(event(amount="42.51"))
    assert content_fingerprint(a) == content_fingerprint(b) != content_fingerprint(c)
    result = validate_raw(raw(event()))
    assert isinstance(result, Validated) and result.fingerprint == content_fingerprint(result.event)
    assert len(result.fingerprint) == 64


def test_non_bytes_are_rejected_not_raised() -> None:
    assert validate_raw("text").reason is Reason.ENCODING_INVALID  # type: ignore[arg-type, union-attr]
