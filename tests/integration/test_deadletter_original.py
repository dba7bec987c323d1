"""`hera deadletter original` against a real broker: a dead letter keeps the masked bytes, and an
operator fetches the unmasked original from the raw topic by the dead letter's coordinates,
checked against its `hera-original-sha256` header."""

from __future__ import annotations

import asyncio
import hashlib
import json
import stat
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from click.testing import CliRunner

from pipeline.brokers import ensure_topics
from pipeline.config import Settings
from pipeline.domain.outcomes import Reason
from pipeline.envelopes import dead_letter, headers_dict

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
ORIGINAL = json.dumps({"event_id": "id-4111111111111111", "description": "card 4111 1111 1111 1111"}).encode()


async def test_an_operator_fetches_the_original_of_a_masked_dead_letter(kafka_bootstrap: str, topic_prefix: str,
                                                                        tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix, home=tmp_path)
    raw_topic = settings.topic("raw")
    assert await ensure_topics(kafka_bootstrap, [raw_topic], partitions=2) == [raw_topic]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(raw_topic, b'{"first": 1}', partition=1)
        sent = await producer.send_and_wait(raw_topic, ORIGINAL, partition=1)
    finally:
        await producer.stop()
    letter = dead_letter(ORIGINAL, Reason.EVENT_ID_CONTAINS_PAN, "event_id holds a card number", stage="validate",
                         topic=raw_topic, partition=sent.partition, offset=sent.offset, key=b"4111111111111111")
    headers = headers_dict(letter.headers)
    assert b"4111111111111111" not in letter.value and b"4111 1111 1111 1111" not in letter.value
    assert letter.key == b"411111*1111"

    monkeypatch.setenv("HERA_KAFKA_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv("HERA_TOPIC_PREFIX", topic_prefix)
    from pipeline.cli.app import main

    def invoke(*args: str):
        return CliRunner().invoke(main, ["deadletter", "original", *args])

    out = tmp_path / "original.json"
    fetched = await asyncio.to_thread(invoke, "--partition", headers["hera-source-partition"], "--offset",
                                      headers["hera-source-offset"], "--sha256", headers["hera-original-sha256"],
                                      "--out", str(out))
    assert fetched.exit_code == 0, fetched.output
    assert out.read_bytes() == ORIGINAL and stat.S_IMODE(out.stat().st_mode) == 0o600
    assert hashlib.sha256(out.read_bytes()).hexdigest() == headers["hera-original-sha256"]

    wrong = await asyncio.to_thread(invoke, "--partition", "1", "--offset", str(sent.offset - 1),
                                    "--sha256", headers["hera-original-sha256"])
    assert wrong.exit_code == 1 and "not the dead letter's original" in wrong.output
    past = await asyncio.to_thread(invoke, "--partition", "1", "--offset", "999")
    assert past.exit_code == 1 and "no record" in past.output
