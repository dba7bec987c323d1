"""Wire envelopes between stages (JSON, UTF-8, never pickle) and the dead-letter convention.

* ``hera.transactions.validated``: {"v": 1, "event": <sanitised RawTransactionV1>, "fingerprint",
  "source": {topic, partition, offset}, "raw_b64"} — the original bytes travel along so that a later
  stage can still dead-letter them verbatim.
* ``hera.transactions.classified``: the validated envelope (without ``raw_b64``) plus "classification"
  and "entry".
* ``hera.entries.posted``: one message per journal entry, keyed by organisation, carrying
  ``entry_id`` so consumers can deduplicate.
* ``hera.deadletter``: the value is the original bytes with every card number masked
  (``pan.mask_pan_bytes``); why and where from travel in headers (the Kafka Connect DLQ
  convention), and ``hera-original-sha256`` names the unmasked original, which an authorised
  operator fetches from the raw topic (``hera deadletter original``, see SECURITY.md).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from pipeline.domain.entries import JournalEntry
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


def source_id(envelope: dict[str, Any]) -> str:
    """``topic/partition/offset`` of the raw record an envelope came from."""
    src = envelope["source"]
    return f"{src['topic']}/{src['partition']}/{src['offset']}"


def dead_letter_from_envelope(env: dict[str, Any], reason: Reason, detail: str, *, stage: str) -> Emit:
    src = env["source"]
    return dead_letter(base64.b64decode(env["raw_b64"]), reason, detail, stage=stage, topic=src["topic"],
                       partition=src["partition"], offset=src["offset"],
                       key=env["event"]["organization_id"].encode())


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
        "lines": [{**line.to_json(), "smart_code": line.smart_code, "description": line.description}
                  for line in entry.lines],
    }


def posted_message(entry: JournalEntry, entry_id: str | None, *, classification: Any, source: Any,
                   redelivered: bool = False, body: dict[str, Any] | None = None) -> Emit:
    """The ``hera.entries.posted`` message of one entry, keyed by organisation (``body``: the entry's
    ``entry_to_json`` when the caller already has it)."""
    body = {"entry_id": entry_id, **(body or entry_to_json(entry)), "classification": classification,
            "source": source}
    if redelivered:
        body["redelivered"] = True
    return Emit("posted", entry.organization_id.encode(), dumps(body))
