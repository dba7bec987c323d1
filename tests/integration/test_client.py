"""The producer client against the real broker: events it builds are valid, land on the partition
the worker expects for their organisation (murmur2 on the key), carry ``hera-schema: raw/v1``,
and are acknowledged; invalid ones never leave the producer."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from agents.outbox import keyed_partition
from pipeline.client import HeraProducer, InvalidEvent, build_event
from pipeline.domain.validate import Validated, validate_raw

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
PARTITIONS = 4
WHEN = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def feed_event(org: str, n: int, amount: Decimal = Decimal("23.50")):
    return build_event(event_id=f"c-{n}", organization_id=org, source="card_feed", occurred_at=WHEN,
                       amount=amount, currency="usd", direction="debit", description="UBER *TRIP HELP.UBER.COM")


def test_build_event_refuses_what_the_pipeline_would_dead_letter() -> None:
    org = str(uuid.uuid4())
    with pytest.raises(InvalidEvent, match="more decimals than USD"):
        feed_event(org, 1, Decimal("23.505"))              # more decimals than USD has
    with pytest.raises(InvalidEvent, match="organization_id"):
        feed_event("acme", 1)
    with pytest.raises(InvalidEvent, match="time zone"):
        build_event(event_id="x", organization_id=org, source="pos", occurred_at=datetime(2024, 5, 1),
                    amount=5, currency="USD")
    event = build_event(event_id="inv-1", organization_id=org.upper(), source="erp", occurred_at=WHEN,
                        amount=1050, currency="JPY", kind="invoice.issued", tax={"rate": Decimal("0.10")})
    assert event.organization_id == org and str(event.amount) == "1050"


async def test_send_keys_by_org_sets_the_header_and_is_acknowledged(kafka_bootstrap: str,
                                                                    topic_prefix: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(f"{topic_prefix}hera.transactions.raw", PARTITIONS, 1)])
    finally:
        await admin.close()
    orgs = [str(uuid.uuid4()) for _ in range(6)]
    events = [feed_event(org, n) for n, org in enumerate(orgs * 2)]
    async with HeraProducer(kafka_bootstrap, topic_prefix=topic_prefix) as hera:
        acks = await hera.send_many(events)
        one = await hera.send(feed_event(orgs[0], 99))
    assert [a.partition for a in acks] == [keyed_partition(e.organization_id.encode(), PARTITIONS) for e in events]
    assert one.partition == acks[0].partition and one.offset > acks[0].offset

    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest")
    tps = [TopicPartition(hera.topic, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    await consumer.start()
    try:
        got = []
        for _ in range(20):
            for msgs in (await consumer.getmany(timeout_ms=500)).values():
                got += msgs
            if len(got) == len(events) + 1:
                break
    finally:
        await consumer.stop()
    assert len(got) == len(events) + 1
    for m in got:
        assert dict(m.headers)["hera-schema"] == b"raw/v1"
        assert m.key == json.loads(m.value)["organization_id"].encode()
        assert isinstance(validate_raw(m.value), Validated)
