"""Money: ISO 4217 minor units, strict parsing of decimal strings, and half-even quantisation.

Amounts are ``Decimal`` from end to end and are parsed only from strings: a float has already
lost the cents, an exponent or ``NaN`` is not an amount. Each currency has a fixed number of
minor units (JPY 0, USD 2, KWD 3); an amount with more decimals than that is invalid, and every
computed amount is quantised half-even (banker's rounding) to it.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from pipeline.domain.errors import HeraError
from pipeline.domain.outcomes import Reason

MINOR_UNITS: dict[str, int] = {
    # zero decimals
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
    "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    # three decimals
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    # four decimals (unit of account)
    "CLF": 4, "UYW": 4,
    # two decimals
    **{ccy: 2 for ccy in (
        "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
        "BGN", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF",
        "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR",
        "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF",
        "IDR", "ILS", "INR", "IRR", "JMD", "KES", "KGS", "KHR", "KPW", "KYD", "KZT", "LAK", "LBP",
        "LKR", "LRD", "LSL", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR",
        "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "PAB", "PEN", "PGK",
        "PHP", "PKR", "PLN", "QAR", "RON", "RSD", "RUB", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD",
        "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TOP",
        "TRY", "TTD", "TWD", "TZS", "UAH", "USD", "UYU", "UZS", "VES", "WST", "XCD", "YER", "ZAR",
        "ZMW", "ZWL",
    )},
}
"""ISO 4217 active currencies and their minor units (the exponent of the smallest unit)."""

INTEGER_DIGITS_MAX = 15          # 999 trillion: far above any single business event
FRACTION_DIGITS_MAX = 18         # syntax limit; the currency's minor units are the real one
_DECIMAL_RE = re.compile(
    rf"^(0|[1-9][0-9]{{0,{INTEGER_DIGITS_MAX - 1}}})(\.[0-9]{{1,{FRACTION_DIGITS_MAX}}})?$")


class AmountError(HeraError, ValueError):
    """An amount string is not a valid amount; always maps to ``Reason.AMOUNT_INVALID``."""

    reason = Reason.AMOUNT_INVALID


def is_currency(ccy: object) -> bool:
    return isinstance(ccy, str) and ccy in MINOR_UNITS


_QUANTA = {ccy: Decimal(1).scaleb(-units) for ccy, units in MINOR_UNITS.items()}  # computed once: on every line


def minor_units(ccy: str) -> int:
    """Decimal places of the currency's minor unit; ``KeyError`` for an unknown currency."""
    return MINOR_UNITS[ccy]


def exponent(ccy: str) -> Decimal:
    """The quantum of the currency, e.g. ``Decimal('0.01')`` for USD, ``Decimal('1')`` for JPY."""
    return _QUANTA[ccy]  # KeyError for an unknown currency, as MINOR_UNITS gives


def quantize(amount: Decimal, ccy: str) -> Decimal:
    """``amount`` rounded half-even to the currency's minor unit."""
    return amount.quantize(exponent(ccy), rounding=ROUND_HALF_EVEN)


def fits_currency(amount: Decimal, ccy: str) -> bool:
    """True when ``amount`` has no more significant decimals than the currency allows."""
    return amount == amount.quantize(_QUANTA[ccy], rounding=ROUND_HALF_EVEN)  # ``quantize``, inlined: per line


def parse_amount(text: object, ccy: str | None = None, *, allow_zero: bool = False) -> Decimal:
    """Parse a strict decimal string (``"1050.00"``) into a ``Decimal``, quantised when ``ccy`` is given.

    Rejects with ``AmountError``: non-strings (floats, ints, bools), signs, exponents, NaN/Inf,
    separators, more than ``INTEGER_DIGITS_MAX`` integer digits, zero (unless ``allow_zero``), and
    more significant decimals than the currency allows (trailing zeros are fine: ``"5.00"`` JPY).
    """
    if not isinstance(text, str):
        raise AmountError(f"amount must be a decimal string, got {type(text).__name__}")
    if not _DECIMAL_RE.fullmatch(text):
        raise AmountError(f"amount {text[:40]!r} is not a plain decimal string")
    try:
        value = Decimal(text)
    except InvalidOperation as exc:   # unreachable after the regex; kept as a guard
        raise AmountError(f"amount {text[:40]!r} is not a decimal") from exc
    if value == 0 and not allow_zero:
        raise AmountError("amount must be greater than zero")
    if ccy is not None:
        if not fits_currency(value, ccy):
            raise AmountError(f"amount {text} has more decimals than {ccy} allows ({minor_units(ccy)})")
        value = quantize(value, ccy)
    return value


def try_parse_amount(text: object, ccy: str | None = None, *, allow_zero: bool = False) -> Decimal | None:
    """``parse_amount`` that returns ``None`` instead of raising."""
    try:
        return parse_amount(text, ccy, allow_zero=allow_zero)
    except AmountError:
        return None


def to_minor(amount: Decimal, ccy: str) -> int:
    """Integer count of minor units (``Decimal('1.05')`` USD -> 105); the amount must already fit."""
    if not fits_currency(amount, ccy):
        raise AmountError(f"{amount} does not fit {ccy}")
    return int(amount.scaleb(MINOR_UNITS[ccy]))
