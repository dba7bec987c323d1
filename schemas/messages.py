"""The messages HERA Stream produces and consumes, as versioned pydantic models: the published contract.

``raw`` (``RawTransactionV1``, in ``schemas.events``) is what producers write; ``posted``,
``review`` and ``deadletter`` are what the pipeline writes; ``decision`` is what reviewers (the
CLI, the web workspace) write. ``json_schemas()`` turns them into JSON Schema (draft 2020-12);
``scripts/generate_contracts.py`` writes them to ``schemas/json/`` and ``hera schema NAME`` prints
them. docs/contracts.md explains every field.

Every produced message carries the header ``hera-schema: <name>/v<version>`` (``schema_header``),
so a consumer can tell the contract of a message before parsing it. A breaking change is a new
model and a new version (see CHANGELOG.md), never an edit in place; adding an optional field is
not breaking, so consumers must tolerate properties they do not know (the output schemas allow
them).

The models describe the wire; the stages build their messages as plain dicts for speed, and the
tests validate real messages of an end-to-end run against these schemas.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from schemas.events import (
    _DECIMAL_RE,
    _SMART_CODE_RE,
    _UUID_SCHEMA,
    RawTransactionV1,
    Source,
)

SCHEMA_HEADER = "hera-schema"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

# name -> version of the contract currently produced. Bump the version (and CHANGELOG.md) on a
# breaking change; never reuse a number.
SCHEMA_VERSIONS: dict[str, int] = {"raw": 1, "posted": 2, "review": 1, "decision": 1, "deadletter": 1}


def schema_header(name: str) -> tuple[str, bytes]:
    """The ``hera-schema`` Kafka header of a message called ``name``, e.g. ``("hera-schema", b"posted/v2")``."""
    return SCHEMA_HEADER, f"{name}/v{SCHEMA_VERSIONS[name]}".encode()


SCHEMA_HEADER_VALUES: dict[str, bytes] = {name: schema_header(name)[1] for name in SCHEMA_VERSIONS}

_UuidStr = Annotated[str, WithJsonSchema(_UUID_SCHEMA)]
_SmartCode = Annotated[str, Field(pattern=_SMART_CODE_RE.pattern)]
_DecimalStr = Annotated[str, Field(pattern=_DECIMAL_RE.pattern)]
_CONFIDENCE_RE = r"^(0(\.[0-9]{1,6})?|1(\.0{1,6})?)$"
_Confidence = Annotated[str, Field(pattern=_CONFIDENCE_RE,
                                   description="calibrated confidence in [0, 1] as a decimal string")]
_Account = Annotated[str, Field(min_length=1, max_length=32, description="GL account code, e.g. \"1020\"")]
_Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
_Reason = Annotated[str, Field(pattern=r"^[A-Z][A-Z_]+$", description="a reason code of docs/reason-codes.md")]


class _Out(BaseModel):
    """Produced messages: consumers must accept properties added later (extend, never rename)."""

    model_config = ConfigDict(extra="allow", frozen=True)


class OriginV1(_Out):
    """Coordinates of the raw record an output came from."""

    topic: str
    partition: Annotated[int, Field(ge=0)]
    offset: Annotated[int, Field(ge=0)]


class PostedLineV1(_Out):
    account: _Account
    side: Literal["DR", "CR"]
    amount: Annotated[_DecimalStr, Field(description="non-negative; the side gives the direction")]
    currency: _Currency
    smart_code: _SmartCode
    description: str | None = None


class ClassificationV1(_Out):
    smart_code: _SmartCode
    confidence: Annotated[float, Field(ge=0, le=1)]
    method: str | None = Field(default=None, description="how it was chosen: rule, model, memory, review, …")
    alternatives: list[list[Any]] | None = Field(
        default=None, description="runner-up [smart_code, confidence] pairs, best first")
    explanation: dict[str, Any] | None = Field(
        default=None, description="why (review items): top features, keyword and MCC categories, unknown "
                                  "words, the memory key that fired, and what capped the confidence (capped_by)")


class PostedEntryV2(_Out):
    """``hera.entries.posted``: one message per journal entry, keyed by organisation.

    Deduplicate on ``entry_id`` (an entry is re-announced with ``redelivered: true`` after a crash).
    """

    schema_version: Annotated[int, Field(json_schema_extra={"const": 2})] = 2
    entry_id: _UuidStr
    event_id: Annotated[str, Field(min_length=1, max_length=128)]
    organization_id: _UuidStr
    smart_code: _SmartCode
    occurred_at: Annotated[str, Field(json_schema_extra={"format": "date-time"})]
    currency: _Currency
    source: Annotated[Source, Field(description="the producer's source of the raw event, e.g. card_feed")]
    origin: Annotated[OriginV1 | None, Field(description="the raw record the entry came from")] = None
    confidence: _Confidence
    reference: str | None = None
    description: str | None = None
    counterparty: str | None = None
    created_by: str | None = None
    lines: Annotated[list[PostedLineV1], Field(min_length=2)]
    classification: ClassificationV1 | None = None
    redelivered: bool = False


class EntrySuggestionV1(_Out):
    """The entry the pipeline would post (a review item's suggestion)."""

    organization_id: _UuidStr
    event_id: str
    smart_code: _SmartCode
    occurred_at: str
    currency: _Currency
    source: Source
    confidence: str
    lines: list[PostedLineV1]
    reference: str | None = None
    description: str | None = None
    counterparty: str | None = None
    created_by: str | None = None


class ReviewItemV1(_Out):
    """``hera.review.queue``: an event that needs a human, with the suggested classification and entry."""

    v: Literal[1]
    event: RawTransactionV1
    fingerprint: str
    source: Annotated[OriginV1, Field(description="the raw record's coordinates (named source in this v1 "
                                                  "envelope)")]
    raw_b64: str | None = Field(default=None, description="the original bytes, base64")
    classification: ClassificationV1
    entry: EntrySuggestionV1 | None = Field(default=None, description="suggested entry; none for suspense")
    review_reason: _Reason


class ReviewDecisionV1(BaseModel):
    """``hera.review.decisions``: a reviewer approves the suggestion or corrects the smart code."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra={
        "if": {"properties": {"decision": {"const": "correct"}}},
        "then": {"required": ["smart_code"], "properties": {"smart_code": {"type": "string"}}},
    })

    organization_id: _UuidStr
    event_id: Annotated[str, Field(min_length=1, max_length=128)]
    decision: Literal["approve", "correct"]
    smart_code: _SmartCode | None = Field(default=None, description="required for correct")
    reviewer: Annotated[str, Field(max_length=200)] | None = None


class DeadLetterHeadersV1(_Out):
    """``hera.deadletter``: the message *value* is the original bytes, unchanged (replay = re-produce it).

    This schema describes the message's headers (decoded as UTF-8 strings), which say why and where
    from; the key is the original key (or the organisation).
    """

    hera_reason: _Reason = Field(alias="hera-reason")
    hera_detail: str = Field(alias="hera-detail", description="short human detail, never field values")
    hera_stage: str = Field(alias="hera-stage", description="validate, classify, post, review, …")
    hera_source_topic: str = Field(alias="hera-source-topic")
    hera_source_partition: Annotated[str, Field(pattern=r"^[0-9]+$")] = Field(alias="hera-source-partition")
    hera_source_offset: Annotated[str, Field(pattern=r"^[0-9]+$")] = Field(alias="hera-source-offset")
    hera_schema: Literal["deadletter/v1"] | None = Field(default=None, alias="hera-schema")


MODELS: dict[str, type[BaseModel]] = {
    "raw": RawTransactionV1,
    "posted": PostedEntryV2,
    "review": ReviewItemV1,
    "decision": ReviewDecisionV1,
    "deadletter": DeadLetterHeadersV1,
}


def json_schema(name: str) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of message ``name`` (one of ``MODELS``)."""
    model = MODELS[name]
    mode: Literal["validation", "serialization"] = "validation" if name in ("raw", "decision") else "serialization"
    body = model.model_json_schema(mode=mode, by_alias=True)
    return {"$schema": JSON_SCHEMA_DIALECT,
            "$id": f"urn:hera-stream:schema:{name}:v{SCHEMA_VERSIONS[name]}",
            "x-hera-schema": SCHEMA_HEADER_VALUES[name].decode(), **body}


def json_schemas() -> dict[str, dict[str, Any]]:
    return {name: json_schema(name) for name in MODELS}
