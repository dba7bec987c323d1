"""A small typed producer API for HERA Stream: build a valid ``RawTransactionV1``, send it where the
worker expects it, and know the broker has it.

    async with HeraProducer("localhost:9092") as hera:
        event = build_event(event_id="c-981", organization_id=ORG, source="card_feed",
                            occurred_at=datetime.now(UTC), amount=Decimal("23.50"), currency="USD",
                            direction="debit", description="UBER *TRIP HELP.UBER.COM")
        ack = await hera.send(event)        # Ack(topic, partition, offset)

* ``build_event`` checks everything the pipeline's first stage checks about the schema (amounts
  as decimal strings within the currency's minor units, a known ISO 4217 currency, a UUID
  organisation, an RFC 3339 time with a zone …) and raises ``InvalidEvent`` at once, so a
  producer learns of a mistake from its own code rather than from the dead-letter topic
  (docs/reason-codes.md). It accepts ``Decimal``, ``int`` and ``str`` amounts and ``datetime`` times.
* ``HeraProducer.send`` keys the record by ``organization_id`` with Kafka's default partitioner
  (murmur2, as the worker assumes), so an organisation's events stay in order on one partition
  and skip the re-keying hop; it sets the ``hera-schema: raw/v1`` header; and it returns only
  when the broker acknowledged the write (``acks=all``), within ``request_timeout_seconds``.

The contract itself: docs/contracts.md, ``hera schema raw``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from pipeline.config import TOPICS, Settings
from pipeline.domain.errors import HeraError
from pipeline.domain.money import MINOR_UNITS
from schemas.events import RawTransactionV1
from schemas.messages import schema_header

REQUEST_TIMEOUT_SECONDS = 30.0
SEND_MANY_MAX = 10_000


class InvalidEvent(ValueError, HeraError):
    """The event would be dead-lettered: what is wrong, by field."""


@dataclass(frozen=True, slots=True)
class Ack:
    """Where the broker stored the event."""

    topic: str
    partition: int
    offset: int


def _wire(value: Any) -> Any:
    """Python values as the wire wants them: Decimal/int amounts as plain decimal strings,
    datetimes as RFC 3339, nested objects likewise."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidEvent("occurred_at: a datetime needs a time zone")
        return value.isoformat()
    if isinstance(value, bool):
        return value
    if isinstance(value, Mapping):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_wire(v) for v in value]
    return value


_MONEY_FIELDS = frozenset({"amount", "tip", "fees"})


def build_event(*, event_id: str, organization_id: str, source: str, occurred_at: datetime | str,
                amount: Decimal | int | str, currency: str, **fields: Any) -> RawTransactionV1:
    """A validated ``RawTransactionV1`` (schema_version 1); raises ``InvalidEvent`` if the pipeline
    would reject it. ``fields``: the optional fields of docs/contracts.md (direction, description,
    counterparty, kind, tax, lines, payments, …)."""
    body: dict[str, Any] = {"schema_version": 1, "event_id": event_id, "organization_id": organization_id,
                            "source": source, "occurred_at": occurred_at, "amount": amount,
                            "currency": currency, **fields}
    body = {k: (str(v) if k in _MONEY_FIELDS and isinstance(v, int) and not isinstance(v, bool) else v)
            for k, v in body.items() if v is not None}
    try:
        return RawTransactionV1.model_validate(_wire(body), context={"minor_units": MINOR_UNITS})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'event'}: {e['msg']}" for e in exc.errors())
        raise InvalidEvent(problems) from None


def encode(event: RawTransactionV1) -> bytes:
    """The event's wire bytes (compact JSON, UTF-8, optional fields left out)."""
    return event.model_dump_json(exclude_none=True).encode()


class HeraProducer:
    """Writes raw events to HERA Stream's raw topic. Use as ``async with``, or ``start``/``stop``."""

    def __init__(self, bootstrap_servers: str, *, topic_prefix: str = "",
                 request_timeout_seconds: float = REQUEST_TIMEOUT_SECONDS, **producer_options: Any) -> None:
        from aiokafka import AIOKafkaProducer

        self.topic = f"{topic_prefix}{TOPICS['raw']}"
        self._timeout = request_timeout_seconds
        self._producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all",
                                          request_timeout_ms=int(request_timeout_seconds * 1000),
                                          **producer_options)

    @classmethod
    def from_settings(cls, settings: Settings, **producer_options: Any) -> HeraProducer:
        """A producer for the cluster, security (SASL/TLS) and topic prefix of ``HERA_*`` settings."""
        from pipeline.brokers import client_kwargs

        options = {**client_kwargs(settings), **producer_options}
        return cls(options.pop("bootstrap_servers"), topic_prefix=settings.topic_prefix, **options)

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def __aenter__(self) -> HeraProducer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def send(self, event: RawTransactionV1) -> Ack:
        """Produce one event keyed by its organisation; return once the broker acknowledged it."""
        return (await self.send_many([event]))[0]

    async def send_many(self, events: Iterable[RawTransactionV1]) -> list[Ack]:
        """Produce events (in order per organisation); return once the broker acknowledged all."""
        batch = list(events)
        if len(batch) > SEND_MANY_MAX:
            raise ValueError(f"send_many takes at most {SEND_MANY_MAX} events; split the batch")
        header = [schema_header("raw")]
        futures = [await self._producer.send(self.topic, encode(e), key=str(e.organization_id).encode(),
                                             headers=header) for e in batch]
        metas = await asyncio.wait_for(asyncio.gather(*futures), timeout=self._timeout)
        return [Ack(m.topic, m.partition, m.offset) for m in metas]
