"""Wire envelopes between stages (JSON, UTF-8, never pickle) and the dead-letter convention.

* ``hera.transactions.validated``: {"v": 1, "event": <sanitised RawTransactionV1>, "fingerprint",
  "source": {topic, partition, offset}}. The original bytes never travel in an envelope (they may
  hold what sanitising removed): a later stage that must dead-letter them verbatim re-reads them from
  the raw topic by ``source`` (an ``Emit`` with ``origin`` set and no value, filled by the agent).
* ``hera.transactions.classified``: the validated envelope plus "classification" and "entry".
* ``hera.entries.posted``: one message per journal entry, keyed by organisation, carrying
  ``entry_id`` so consumers can deduplicate.
* ``hera.deadletter``: the value is the original bytes with every card number masked
  (``pan.mask_pan_bytes``); why and where from travel in headers (the Kafka Connect DLQ
  convention), and ``hera-original-sha256`` names the unmasked original, which an authorised
  operator fetches from the raw topic (``hera deadletter original``, see SECURITY.md).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from pipeline.domain.entries import JournalEntry
from pipeline.domain.errors import HeraError
from pipeline.domain.outcomes import Reason
from pipeline.domain.pan import mask_pan_bytes, mask_pans

DLQ_HEADER_REASON = "hera-reason"
DLQ_HEADER_DETAIL = "hera-detail"
DLQ_HEADER_STAGE = "hera-stage"
DLQ_HEADER_TOPIC = "hera-source-topic"
DLQ_HEADER_PARTITION = "hera-source-partition"
DLQ_HEADER_OFFSET = "hera-source-offset"
DLQ_HEADER_ORIGINAL_SHA256 = "hera-original-sha256"
DLQ_DETAIL_CHARS_MAX = 500


@dataclass(frozen=True, slots=True)
class Record:
    """A consumed Kafka record, independent of the client library."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Emit:
    """A message a stage wants produced. ``topic_key`` names a topic of ``config.TOPICS``."""

    topic_key: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = field(default=())
    origin: tuple[str, int, int] | None = None  # (topic, partition, offset) whose bytes are the value, to read

    @property
    def needs_value(self) -> bool:
        return self.origin is not None and not self.value


class EnvelopeInvalid(HeraError, ValueError):
    """A message on an internal topic that is not the envelope it should be."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an event came from: the raw record's coordinates."""

    topic: str
    partition: int
    offset: int

    @property
    def id(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"

    def to_json(self) -> dict[str, Any]:
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset}

    @classmethod
    def from_json(cls, data: Any) -> Origin:
        try:
            return cls(str(data["topic"]), int(data["partition"]), int(data["offset"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise EnvelopeInvalid(f"source: {exc!r}") from exc


@dataclass(frozen=True, slots=True)
class ValidatedEnvelope:
    """``hera.transactions.validated`` (``validated/v1``): a sanitised event, where it came from, and
    its fingerprint (for dedupe); ``admitted`` when re-admitted from the deferred topic."""

    event: dict[str, Any]  # the sanitised RawTransactionV1 as JSON
    fingerprint: str
    source: Origin
    admitted: bool = False
    raw_timestamp_ms: int | None = None  # the raw record's broker time: the end-to-end latency's start

    @property
    def org(self) -> str:
        return str(self.event["organization_id"])

    @property
    def event_id(self) -> str:
        return str(self.event["event_id"])

    def to_json(self) -> dict[str, Any]:
        out = {"v": 1, "event": self.event, "fingerprint": self.fingerprint, "source": self.source.to_json()}
        if self.admitted:
            out["admitted"] = True
        if self.raw_timestamp_ms is not None:
            # as an RFC 3339 time, not epoch milliseconds: 13 digits in a row can pass the Luhn check
            # and read as a card number to a PAN scanner
            out["raw_time"] = datetime.fromtimestamp(self.raw_timestamp_ms / 1000, UTC).isoformat(
                timespec="milliseconds")
        return out

    @classmethod
    def from_json(cls, data: Any) -> ValidatedEnvelope:
        if not isinstance(data, dict) or not isinstance(data.get("event"), dict) \
                or not isinstance(data["event"].get("organization_id"), str) \
                or not isinstance(data["event"].get("event_id"), str) or not isinstance(data.get("fingerprint"), str):
            raise EnvelopeInvalid("not a validated envelope")
        return cls(data["event"], data["fingerprint"], Origin.from_json(data.get("source")),
                   bool(data.get("admitted")), _time_ms(data.get("raw_time")))


@dataclass(frozen=True, slots=True)
class ParkedEnvelope:
    """``hera.transactions.deferred`` (``deferred/v1``): a validated event waiting for its
    organisation's quota, with its place in the queue (``seq``) and the earliest time it may pass."""

    validated: ValidatedEnvelope
    seq: int
    not_before: float

    def to_json(self) -> dict[str, Any]:
        return {**self.validated.to_json(), "parked": {"seq": self.seq, "not_before": self.not_before}}

    @classmethod
    def from_json(cls, data: Any) -> ParkedEnvelope:
        parked = data.get("parked") if isinstance(data, dict) else None
        if not isinstance(parked, dict):
            raise EnvelopeInvalid("not a parked envelope")
        try:
            return cls(ValidatedEnvelope.from_json(data), int(parked["seq"]), float(parked["not_before"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise EnvelopeInvalid(f"parked: {exc!r}") from exc


@dataclass(frozen=True, slots=True)
class ClassifiedEnvelope:
    """``hera.transactions.classified`` (``classified/v1``) and the review item's payload: the
    validated event with its classification, its (suggested) entry, and why it is reviewed."""

    validated: ValidatedEnvelope
    classification: dict[str, Any]  # smart_code, confidence, method, alternatives
    entry: dict[str, Any] | None
    review_reason: str | None = None

    @property
    def org(self) -> str:
        return self.validated.org

    @property
    def event_id(self) -> str:
        return self.validated.event_id

    @property
    def source(self) -> Origin:
        return self.validated.source

    @property
    def raw_timestamp_ms(self) -> int | None:
        return self.validated.raw_timestamp_ms

    def to_json(self) -> dict[str, Any]:
        out = {**self.validated.to_json(), "classification": self.classification, "entry": self.entry}
        if self.review_reason is not None:
            out["review_reason"] = self.review_reason
        return out


AnyEnvelope = ValidatedEnvelope | ClassifiedEnvelope


def _time_ms(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return round(datetime.fromisoformat(value).timestamp() * 1000)
    except ValueError:
        return None


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON (orjson: the worker writes several messages per event); what JSON has no
    type for (Decimal) is written as its string."""
    return orjson.dumps(obj, default=str)


def dead_letter(raw: bytes, reason: Reason, detail: str, *, stage: str, topic: str, partition: int,
                offset: int, key: bytes | None = None) -> Emit:
    headers = (
        (DLQ_HEADER_REASON, reason.value.encode()),
        (DLQ_HEADER_DETAIL, mask_pans(detail)[:DLQ_DETAIL_CHARS_MAX].encode()),
        (DLQ_HEADER_STAGE, stage.encode()),
        (DLQ_HEADER_TOPIC, topic.encode()),
        (DLQ_HEADER_PARTITION, str(partition).encode()),
        (DLQ_HEADER_OFFSET, str(offset).encode()),
        (DLQ_HEADER_ORIGINAL_SHA256, hashlib.sha256(raw).hexdigest().encode()),
    )
    return Emit("deadletter", None if key is None else mask_pan_bytes(key), mask_pan_bytes(raw), headers)


def dead_letter_from_envelope(env: AnyEnvelope, reason: Reason, detail: str, *, stage: str) -> Emit:
    """The dead letter of the raw record an envelope came from; its value (the original bytes) is read
    back from the raw topic by the agent that produces it."""
    src = env.source
    letter = dead_letter(b"", reason, detail, stage=stage, topic=src.topic, partition=src.partition,
                         offset=src.offset, key=env.org.encode())
    return Emit(letter.topic_key, letter.key, b"", letter.headers, origin=(src.topic, src.partition, src.offset))


def headers_dict(headers: Any) -> dict[str, str]:
    return {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in (headers or [])}


def entry_to_json(entry: JournalEntry) -> dict[str, Any]:
    return {
        "organization_id": entry.organization_id,
        "event_id": entry.event_id,
        "smart_code": entry.smart_code,
        "occurred_at": entry.occurred_at.isoformat(),
        "currency": entry.currency,
        "source": entry.source,
        "confidence": str(entry.confidence),
        "reference": entry.reference,
        "description": entry.description,
        "counterparty": entry.counterparty,
        "created_by": entry.created_by,
        # ``JournalLine.to_json``'s keys, then the line's smart code and description (inlined: per line)
        "lines": [{"account": line.account, "side": line.side, "amount": str(line.amount), "currency": line.currency,
                   "smart_code": line.smart_code, "description": line.description}
                  for line in entry.lines],
    }


def posted_message(entry: JournalEntry, entry_id: str | None, *, classification: Any, source: Any,
                   redelivered: bool = False, body: dict[str, Any] | None = None) -> Emit:
    """The ``hera.entries.posted`` message of one entry (``posted/v2``, docs/contracts.md), keyed by
    organisation (``body``: the entry's ``entry_to_json`` when the caller already has it).

    ``source`` is the raw record's coordinates: they go under ``origin``, and the body keeps the
    producer's ``source`` (e.g. ``card_feed``). The one ``confidence`` is the classification's."""
    body = {"schema_version": 2, "entry_id": entry_id, **(body or entry_to_json(entry)),
            "classification": classification, "origin": source}
    if isinstance(classification, dict) and classification.get("confidence") is not None:
        body["confidence"] = format(Decimal(str(classification["confidence"])).normalize(), "f")
    if redelivered:
        body["redelivered"] = True
    return Emit("posted", entry.organization_id.encode(), dumps(body))
