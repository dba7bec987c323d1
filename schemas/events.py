"""Raw transaction event, schema version 1 (docs/contracts.md): the wire contract of ``hera.transactions.raw``.

Strict: unknown fields are forbidden everywhere except inside ``metadata``; money is a decimal
*string* (never a JSON number) parsed into ``Decimal``; text fields have length limits; the
timestamp is RFC 3339 with an offset. Breaking changes make a new class (``RawTransactionV2``),
never an edit of this one.

Validation errors carry a pydantic error *type* that ``pipeline.domain.validate`` maps to a
stable reason code: ``amount_invalid`` -> AMOUNT_INVALID, ``currency_unknown`` ->
CURRENCY_UNKNOWN, ``tax_invalid`` -> TAX_INVALID, anything else -> SCHEMA_INVALID.

The currency table lives in ``pipeline.domain.money`` (dependencies point inward, so this module
cannot import it): pass ``context={"minor_units": MINOR_UNITS}`` to ``model_validate`` to check
currencies and quantise every amount to its currency. Without it only the syntax is checked.
"""

from __future__ import annotations

import functools
import json
import operator
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StrictInt,
    StrictStr,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

SCHEMA_VERSION = 1
EVENT_ID_LENGTH_MAX = 128
DESCRIPTION_LENGTH_MAX = 500
COUNTERPARTY_LENGTH_MAX = 200
REFERENCE_LENGTH_MAX = 128
SMART_CODE_LENGTH_MAX = 128
CATEGORY_LENGTH_MAX = 128
LINES_MAX = 100
PAYMENTS_MAX = 20
METADATA_BYTES_MAX = 10 * 1024

_DECIMAL_RE = re.compile(r"^(0|[1-9][0-9]{0,14})(\.[0-9]{1,18})?$")
_RATE_RE = re.compile(r"^(0|[1-9][0-9]{0,2})(\.[0-9]{1,8})?$")
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_RFC3339_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})$")
_CURRENCY_RE = re.compile(r"^[A-Za-z]{3}$")
_SMART_CODE_RE = re.compile(r"^HERA\.[A-Z0-9]{3,15}(\.[A-Z0-9_]{2,30}){3,8}\.v[0-9]+$")


class Source(StrEnum):
    BANK_FEED = "bank_feed"
    CARD_FEED = "card_feed"
    POS = "pos"
    ERP = "erp"
    API = "api"


FEED_SOURCES = frozenset({Source.BANK_FEED, Source.CARD_FEED})


class Kind(StrEnum):
    INVOICE_ISSUED = "invoice.issued"
    CREDIT_NOTE_ISSUED = "credit_note.issued"
    PAYMENT_RECEIVED = "payment.received"
    BILL_RECEIVED = "bill.received"
    PAYMENT_SENT = "payment.sent"
    POS_DAILY_SUMMARY = "pos.daily_summary"
    PAYROLL_RUN = "payroll.run"
    GOODS_RECEIVED = "goods.received"
    INVENTORY_ADJUSTED = "inventory.adjusted"
    TAX_PAID = "tax.paid"
    LOAN_REPAYMENT = "loan.repayment"
    TRANSFER_INTERNAL = "transfer.internal"
    OWNER_DRAW = "owner.draw"


class Direction(StrEnum):
    DEBIT = "debit"      # money out
    CREDIT = "credit"    # money in


class PaymentMethod(StrEnum):
    CASH = "cash"
    CARD = "card"


class Adjustment(StrEnum):
    SHRINKAGE = "shrinkage"
    GAIN = "gain"


def _decimal_string(value: Any, *, positive: bool) -> Decimal:
    if not isinstance(value, str):
        raise PydanticCustomError("amount_invalid", "amount must be a decimal string, not {type}",
                                  {"type": type(value).__name__})
    if not _DECIMAL_RE.fullmatch(value):
        raise PydanticCustomError("amount_invalid", "amount is not a plain decimal string")
    amount = Decimal(value)
    if positive and not amount:
        raise PydanticCustomError("amount_invalid", "amount must be greater than zero")
    return amount


def _rate(value: Any) -> Decimal:
    if not isinstance(value, str) or not _RATE_RE.fullmatch(value):
        raise PydanticCustomError("tax_invalid", "tax rate must be a decimal string such as \"0.05\"")
    rate = Decimal(value)
    if rate > 1:
        raise PydanticCustomError("tax_invalid", "tax rate must be a fraction in [0, 1] (\"0.05\" is 5 %)")
    return rate


def _uuid(value: Any) -> str:
    if not isinstance(value, str) or not _UUID_RE.fullmatch(value):
        raise PydanticCustomError("uuid_invalid", "organization_id must be a UUID string")
    return value.lower()


def _timestamp(value: Any) -> datetime:
    if not isinstance(value, str) or not _RFC3339_RE.fullmatch(value):
        raise PydanticCustomError("timestamp_invalid", "occurred_at must be RFC 3339 with a time zone")
    try:
        return datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError as exc:
        raise PydanticCustomError("timestamp_invalid", "occurred_at is not a real date/time") from exc


def _currency(value: Any) -> str:
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "currency must be a string")
    if not (len(value) == 3 and value.isascii() and value.isalpha()):   # _CURRENCY_RE, without the regex call
        raise PydanticCustomError("currency_unknown", "currency is not an ISO 4217 code")
    return value.upper()


def _category(value: Any) -> str:
    if not isinstance(value, str) or len(value) > CATEGORY_LENGTH_MAX:
        raise PydanticCustomError("category_invalid", "category must be a short string")
    if value in ("product", "service") or _SMART_CODE_RE.fullmatch(value):
        return value
    raise PydanticCustomError("category_invalid", "category must be product, service or a smart code")


def _metadata(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PydanticCustomError("dict_type", "metadata must be a JSON object")
    try:
        size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode())
    except (TypeError, ValueError) as exc:
        raise PydanticCustomError("metadata_invalid", "metadata is not plain JSON") from exc
    if size > METADATA_BYTES_MAX:
        raise PydanticCustomError("metadata_too_large", "metadata exceeds {limit} bytes",
                                  {"limit": METADATA_BYTES_MAX})
    return value


# Each wire type states its constraints to the JSON Schema (``WithJsonSchema``), built from the same
# patterns and limits the validators use, so the published schema and the code cannot drift apart
# (tests/unit/test_message_schemas.py holds the generated files to these definitions).
_DECIMAL_SCHEMA = {"type": "string", "pattern": _DECIMAL_RE.pattern,
                   "description": "decimal string, e.g. \"105.00\" (never a JSON number, no exponent)"}
_POSITIVE_SCHEMA = {**_DECIMAL_SCHEMA, "not": {"pattern": r"^0(\.0+)?$"},
                    "description": "decimal string greater than zero, e.g. \"105.00\""}
_RATE_SCHEMA = {"type": "string", "pattern": _RATE_RE.pattern,
                "description": "tax rate as a fraction in [0, 1]: \"0.05\" is 5 %"}
_UUID_SCHEMA = {"type": "string", "format": "uuid", "pattern": _UUID_RE.pattern}
_TIMESTAMP_SCHEMA = {"type": "string", "format": "date-time", "pattern": _RFC3339_RE.pattern,
                     "description": "RFC 3339 timestamp with a time zone"}
_CURRENCY_SCHEMA = {"type": "string", "pattern": _CURRENCY_RE.pattern,
                    "description": "ISO 4217 code (case-insensitive, must be a known currency)"}
_CATEGORY_SCHEMA = {"anyOf": [{"type": "string", "enum": ["product", "service"]},
                              {"type": "string", "pattern": _SMART_CODE_RE.pattern,
                               "maxLength": CATEGORY_LENGTH_MAX}]}
_METADATA_SCHEMA = {"type": "object", "description": f"free-form JSON, at most {METADATA_BYTES_MAX} bytes "
                    "as compact UTF-8 JSON; kept verbatim after sanitising"}



def _plain_decimal(amount: Decimal) -> str:
    return format(amount, "f")   # never "1E-8"


def _isoformat(moment: datetime) -> str:
    return moment.isoformat()


def _as_is(value: Any) -> Any:
    return value


_as_str = PlainSerializer(_plain_decimal, return_type=str, when_used="json")
Money = Annotated[Decimal, PlainValidator(functools.partial(_decimal_string, positive=False)), _as_str,
                  WithJsonSchema(_DECIMAL_SCHEMA)]
PositiveMoney = Annotated[Decimal, PlainValidator(functools.partial(_decimal_string, positive=True)), _as_str,
                          WithJsonSchema(_POSITIVE_SCHEMA)]
Rate = Annotated[Decimal, PlainValidator(_rate), _as_str, WithJsonSchema(_RATE_SCHEMA)]
OrgId = Annotated[str, PlainValidator(_uuid), WithJsonSchema(_UUID_SCHEMA)]
Timestamp = Annotated[datetime, PlainValidator(_timestamp),
                      PlainSerializer(_isoformat, return_type=str, when_used="json"),
                      WithJsonSchema(_TIMESTAMP_SCHEMA)]
Currency = Annotated[str, PlainValidator(_currency), WithJsonSchema(_CURRENCY_SCHEMA)]
Category = Annotated[str, PlainValidator(_category), WithJsonSchema(_CATEGORY_SCHEMA)]
Metadata = Annotated[dict[str, Any], PlainValidator(_metadata), WithJsonSchema(_METADATA_SCHEMA)]


_M = TypeVar("_M", bound=BaseModel)


def _updated(model: _M, update: dict[str, Any]) -> _M:
    """``model.model_copy(update=update)``, but ``model`` itself when no value in ``update`` is new.

    "New" is by identity: ``_quantised`` hands back the very objects it was given for what did not
    change, so an unchanged model is kept instead of copied. The model gets the same
    ``model_fields_set`` the copy would have had (``model_copy`` marks every updated name as set).
    The model is normally the one this validation has just built; revalidating an existing
    instance with the currency table gives back that instance (so marked) rather than a copy.
    """
    if all(map(operator.is_, update.values(), map(model.__dict__.__getitem__, update))):
        model.__pydantic_fields_set__.update(update)
        return model
    return model.model_copy(update=update)


_QUANTISED_FIELDS = frozenset({"amount", "tip", "fees", "tax", "lines", "payments", "payroll", "loan"})


@functools.cache
def _quantum(places: int) -> Decimal:
    return Decimal(1).scaleb(-places)


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def json_body(self) -> dict[str, Any]:
        """``self.model_dump(mode="json", exclude_none=True)``, written without pydantic's serializer
        (several times faster) when every value is of a type ``_JSON_WRITERS`` knows; see ``_json_of``."""
        body = _json_of(self)
        return self.model_dump(mode="json", exclude_none=True) if body is None else body


# How each type of value the wire models hold is written to JSON: the serializers these fields declare
# (``_as_str`` for every Decimal, ``Timestamp``'s for the datetime), an enum as its value (looked up, not
# read through the slower ``.value`` property), an int as it is (a str too, in ``_json_of``). A value of
# any other type (``metadata``'s dict, or a type added later) is left to pydantic.
_JSON_WRITERS: dict[type, Callable[[Any], Any]] = {
    int: _as_is, Decimal: _plain_decimal, datetime: _isoformat,
    **{enum: {member: member.value for member in enum}.__getitem__
       for enum in (Source, Kind, Direction, PaymentMethod, Adjustment)},
}


def _json_of(model: _Wire) -> dict[str, Any] | None:
    """``model.model_dump(mode="json", exclude_none=True)`` for models made of the types in
    ``_JSON_WRITERS``, wire models and lists of wire models; ``None`` for any other model."""
    out: dict[str, Any] = {}
    for name, value in model.__dict__.items():   # the fields, in their declared order
        if value is None:
            continue
        if type(value) is str:   # most values
            out[name] = value
        elif (write := _JSON_WRITERS.get(type(value))) is not None:
            out[name] = write(value)
        elif isinstance(value, _Wire):
            if (sub := _json_of(value)) is None:
                return None
            out[name] = sub
        elif type(value) is list and all(isinstance(item, _Wire) for item in value):
            items = [_json_of(item) for item in value]
            if None in items:
                return None
            out[name] = items
        else:
            return None
    return out


class TaxV1(_Wire):
    """Tax included in ``amount``: a rate (``"0.05"``) or an absolute amount, exactly one of them."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra={
        "oneOf": [{"required": ["rate"], "properties": {"amount": {"type": "null"}}},
                  {"required": ["amount"], "properties": {"rate": {"type": "null"}}}]})

    rate: Rate | None = None
    amount: Money | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> TaxV1:
        if (self.rate is None) == (self.amount is None):
            raise PydanticCustomError("tax_invalid", "tax needs exactly one of rate or amount")
        return self


class LineV1(_Wire):
    """A net line: ``category`` is product, service, or an expense smart code."""

    description: Annotated[StrictStr, Field(max_length=DESCRIPTION_LENGTH_MAX)] | None = None
    amount: Money
    category: Category | None = None


class PaymentV1(_Wire):
    method: PaymentMethod
    amount: Money


class PayrollV1(_Wire):
    gross: Money
    employee_withholdings: Money
    employer_taxes: Money


class LoanV1(_Wire):
    principal: Money
    interest: Money


# What ``_contract`` checks about feed lines, stated to the JSON Schema.
_FEED_RULE: dict[str, Any] = {"if": {"properties": {"source": {"enum": sorted(str(s) for s in FEED_SOURCES)}}},
                              "then": {"required": ["direction", "description"]}}


class RawTransactionV1(_Wire):
    """One raw business event as written by a producer (docs/contracts.md, "Raw transaction")."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_FEED_RULE)

    schema_version: Annotated[StrictInt, Field(json_schema_extra={"const": SCHEMA_VERSION})]
    event_id: Annotated[StrictStr, Field(min_length=1, max_length=EVENT_ID_LENGTH_MAX)]
    organization_id: OrgId
    source: Source
    kind: Kind | None = None
    occurred_at: Timestamp
    amount: PositiveMoney
    currency: Currency
    direction: Direction | None = None
    description: Annotated[StrictStr, Field(min_length=1, max_length=DESCRIPTION_LENGTH_MAX)] | None = None
    counterparty: Annotated[StrictStr, Field(max_length=COUNTERPARTY_LENGTH_MAX)] | None = None
    mcc: Annotated[StrictStr, Field(pattern=r"^[0-9]{4}$")] | None = None
    tax: TaxV1 | None = None
    tip: Money | None = None
    lines: Annotated[list[LineV1], Field(max_length=LINES_MAX)] | None = None
    payments: Annotated[list[PaymentV1], Field(max_length=PAYMENTS_MAX)] | None = None
    fees: Money | None = None
    payroll: PayrollV1 | None = None
    loan: LoanV1 | None = None
    adjustment: Adjustment | None = None
    reference: Annotated[StrictStr, Field(max_length=REFERENCE_LENGTH_MAX)] | None = None
    smart_code: Annotated[StrictStr, Field(max_length=SMART_CODE_LENGTH_MAX)] | None = None
    metadata: Metadata | None = None

    @property
    def is_feed(self) -> bool:
        return self.source in FEED_SOURCES

    @model_validator(mode="after")
    def _contract(self, info: ValidationInfo) -> RawTransactionV1:
        if self.schema_version != SCHEMA_VERSION:
            raise PydanticCustomError("schema_version_unsupported", "schema_version {v} is not supported",
                                      {"v": self.schema_version})
        if self.is_feed and (self.direction is None or self.description is None):
            raise PydanticCustomError("feed_fields_missing", "bank_feed/card_feed events need direction "
                                      "and description")
        context = info.context
        table = context.get("minor_units") if isinstance(context, dict) else None
        if table is None:
            return self
        return self._quantised(table)

    def _fits(self, same_quantum: Callable[[Decimal], bool]) -> bool:
        """True when every amount of the event has the quantum's exponent; an event of top-level
        amounts only (the common shape) is checked without listing them."""
        if self.lines is None and self.payments is None and self.payroll is None and self.loan is None:
            return (same_quantum(self.amount) and (self.tip is None or same_quantum(self.tip))
                    and (self.fees is None or same_quantum(self.fees))
                    and (self.tax is None or self.tax.amount is None or same_quantum(self.tax.amount)))
        return all(map(same_quantum, self._amounts()))

    def _amounts(self) -> list[Decimal]:
        """Every amount the event holds, in any part."""
        amounts = [self.amount]
        if self.tip is not None:
            amounts.append(self.tip)
        if self.fees is not None:
            amounts.append(self.fees)
        if self.tax is not None and self.tax.amount is not None:
            amounts.append(self.tax.amount)
        for parts in (self.lines, self.payments):
            if parts is not None:
                amounts += [part.amount for part in parts]
        if self.payroll is not None:
            amounts += [self.payroll.gross, self.payroll.employee_withholdings, self.payroll.employer_taxes]
        if self.loan is not None:
            amounts += [self.loan.principal, self.loan.interest]
        return amounts

    def _quantised(self, table: Mapping[str, int]) -> RawTransactionV1:
        """Check the currency and that no amount has more decimals than it allows; quantise all.

        Most amounts already carry their currency's exponent, so the quantised Decimal is the same
        as the given one (equal in value with the same exponent, hence the same digits; quantize
        keeps the sign): those keep their object, and a model in which nothing changes is kept
        rather than copied (see ``_updated``). "12.5" in USD still becomes "12.50".
        """
        if self.currency not in table:
            raise PydanticCustomError("currency_unknown", "currency {c} is not a known ISO 4217 code",
                                      {"c": self.currency})
        quantum = _quantum(table[self.currency])
        if self._fits(quantum.same_quantum):
            # Every amount already has the currency's exponent (the common case): nothing changes,
            # and the event is marked as ``_updated`` below would mark it. Of the names it updates,
            # only the tax's ``amount`` and the event's optional parts can be unset: the others are
            # required fields.
            self.__pydantic_fields_set__.update(_QUANTISED_FIELDS)
            if self.tax is not None:
                self.tax.__pydantic_fields_set__.add("amount")
            return self

        def q(value: Decimal | None) -> Decimal | None:
            if value is None:
                return None
            exact = value.quantize(quantum)
            if exact != value:
                raise PydanticCustomError("amount_invalid", "{v} has more decimals than {c} allows",
                                          {"v": str(value), "c": self.currency})
            return value if exact.same_quantum(value) else exact   # equal and same exponent: same digits

        def one(model: _M, *names: str) -> _M:
            return _updated(model, {n: q(getattr(model, n)) for n in names})

        def sub(model: _M | None, *names: str) -> _M | None:
            return None if model is None else one(model, *names)

        def each(models: list[_M] | None) -> list[_M] | None:
            if models is None:
                return None
            done = [one(model, "amount") for model in models]
            return models if all(map(operator.is_, done, models)) else done

        return _updated(self, {
            "amount": q(self.amount), "tip": q(self.tip), "fees": q(self.fees),
            "tax": sub(self.tax, "amount"),
            "lines": each(self.lines),
            "payments": each(self.payments),
            "payroll": sub(self.payroll, "gross", "employee_withholdings", "employer_taxes"),
            "loan": sub(self.loan, "principal", "interest"),
        })

