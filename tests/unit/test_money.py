"""Money: minor units, strict parsing, half-even quantisation. Never float."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pipeline.domain.money import (
    MINOR_UNITS,
    AmountError,
    exponent,
    fits_currency,
    is_currency,
    minor_units,
    parse_amount,
    quantize,
    to_minor,
    try_parse_amount,
)
from pipeline.domain.outcomes import Reason

COMMON = ("USD EUR GBP AED SAR INR JPY KRW KWD BHD OMR JOD TND CHF CNY HKD SGD AUD NZD CAD MXN BRL ZAR "
          "NGN KES EGP TRY PLN SEK NOK DKK CZK HUF THB VND IDR MYR PHP ILS RUB QAR PKR").split()


def test_common_currencies_are_known() -> None:
    missing = [ccy for ccy in COMMON if ccy not in MINOR_UNITS]
    assert missing == []
    assert all(len(c) == 3 and c.isupper() for c in MINOR_UNITS)


@pytest.mark.parametrize(("ccy", "units"), [("USD", 2), ("EUR", 2), ("JPY", 0), ("KRW", 0), ("VND", 0),
                                            ("KWD", 3), ("BHD", 3), ("OMR", 3), ("JOD", 3), ("TND", 3)])
def test_minor_units(ccy: str, units: int) -> None:
    assert minor_units(ccy) == units
    assert exponent(ccy) == Decimal(1).scaleb(-units)


def test_unknown_currency() -> None:
    assert not is_currency("XYZ") and not is_currency(None) and is_currency("AED")
    with pytest.raises(KeyError):
        minor_units("XYZ")


@pytest.mark.parametrize(("amount", "ccy", "expected"), [
    ("2.345", "USD", "2.34"), ("2.355", "USD", "2.36"), ("2.5", "JPY", "2"), ("3.5", "JPY", "4"),
    ("1.0005", "KWD", "1.000"), ("1.0015", "KWD", "1.002"), ("95.238095", "USD", "95.24"),
])
def test_quantize_half_even(amount: str, ccy: str, expected: str) -> None:
    result = quantize(Decimal(amount), ccy)
    assert result == Decimal(expected) and str(result) == expected


@pytest.mark.parametrize(("text", "ccy", "expected"), [
    ("1050.00", "USD", "1050.00"), ("1050", "USD", "1050.00"), ("0.5", "USD", "0.50"),
    ("1000", "JPY", "1000"), ("1000.00", "JPY", "1000"), ("1.234", "KWD", "1.234"), ("12.5", None, "12.5"),
])
def test_parse_amount_accepts(text: str, ccy: str | None, expected: str) -> None:
    assert str(parse_amount(text, ccy)) == expected


@pytest.mark.parametrize("value", [
    1.5, 10, True, None, "1e3", "1E3", "NaN", "nan", "Infinity", "-inf", "-1.00", "+1.00", " 1.00", "1.00 ",
    "1,000.00", "01.00", ".5", "5.", "", "0", "0.00", "١٢", "1_000", "9" * 16, "0x10",
])
def test_parse_amount_rejects(value: object) -> None:
    with pytest.raises(AmountError) as info:
        parse_amount(value, "USD")
    assert info.value.reason is Reason.AMOUNT_INVALID
    assert try_parse_amount(value, "USD") is None


@pytest.mark.parametrize(("text", "ccy"), [("1.001", "USD"), ("1.5", "JPY"), ("1.0001", "KWD")])
def test_more_decimals_than_the_currency_allows(text: str, ccy: str) -> None:
    assert try_parse_amount(text, ccy) is None
    assert not fits_currency(Decimal(text), ccy)


def test_zero_only_when_allowed_and_minor_units() -> None:
    assert parse_amount("0.00", "USD", allow_zero=True) == 0
    assert to_minor(Decimal("1.05"), "USD") == 105
    assert to_minor(Decimal("1.005"), "KWD") == 1005
    assert to_minor(Decimal("500"), "JPY") == 500
    with pytest.raises(AmountError):
        to_minor(Decimal("1.005"), "USD")
