"""A secured cluster: the embedded broker with a SASL/SCRAM-SHA-512 listener and ACLs (deny by default).

The pipeline's user ``hera`` may use only topics and consumer groups under its prefix (the grants an
operator gives it on a managed cluster: docs/kafka.md). The pipeline must work end to end with
the right credentials, refuse to start with one clear line on wrong ones, and another user without
grants must be denied the posted entries.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from pipeline.devtools.local import kafka as embedded_kafka
from pipeline.devtools.local.process import free_port, terminate
from tests.e2e.harness import Pipeline, structured_events

pytestmark = [pytest.mark.integration]

MECHANISM = "SCRAM-SHA-512"
HERA_PASSWORD = uuid.uuid4().hex
OTHER_PASSWORD = uuid.uuid4().hex
EVENTS = 120


@pytest.fixture(scope="module")
def scram_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, embedded_kafka.ScramSetup]]:
    scram = embedded_kafka.ScramSetup(mechanism=MECHANISM, users={"hera": HERA_PASSWORD, "other": OTHER_PASSWORD})
    handle = embedded_kafka.start(tmp_path_factory.mktemp("scram") / "kafka", free_port(), free_port(), scram=scram)
    try:
        yield handle.bootstrap, scram
    finally:
        terminate(handle.pid)


def grant_prefix(bootstrap: str, scram: embedded_kafka.ScramSetup, user: str, prefix: str) -> None:
    """What an operator grants the pipeline: everything on its prefixed topics and groups, and to
    describe the cluster (librdkafka's admin client, as an operator's tooling would)."""
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        AdminClient,
        ResourcePatternType,
        ResourceType,
    )

    admin = AdminClient({"bootstrap.servers": bootstrap, "security.protocol": "sasl_plaintext",
                         "sasl.mechanism": scram.mechanism, "sasl.username": embedded_kafka.ADMIN_USER,
                         "sasl.password": scram.admin_password})
    principal = f"User:{user}"
    bindings = [
        AclBinding(ResourceType.TOPIC, prefix, ResourcePatternType.PREFIXED, principal, "*",
                   AclOperation.ALL, AclPermissionType.ALLOW),
        AclBinding(ResourceType.GROUP, prefix, ResourcePatternType.PREFIXED, principal, "*",
                   AclOperation.ALL, AclPermissionType.ALLOW),
        AclBinding(ResourceType.BROKER, "kafka-cluster", ResourcePatternType.LITERAL, principal, "*",
                   AclOperation.DESCRIBE, AclPermissionType.ALLOW),
    ]
    for future in admin.create_acls(bindings, request_timeout=30).values():
        future.result(timeout=30)


def security(username: str, password: str) -> dict[str, str]:
    return {"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_mechanism": MECHANISM,
            "kafka_sasl_username": username, "kafka_sasl_password": password}


@pytest.fixture()
async def secured_pipe(scram_broker: tuple[str, embedded_kafka.ScramSetup], database_url: str,
                       topic_prefix: str, tmp_path: Path) -> AsyncIterator[Pipeline]:
    bootstrap, scram = scram_broker
    await asyncio.to_thread(grant_prefix, bootstrap, scram, "hera", topic_prefix)
    pipe = Pipeline(bootstrap, database_url, topic_prefix, tmp_path, security=security("hera", HERA_PASSWORD))
    await pipe.prepare()
    try:
        yield pipe
    finally:
        pipe.stop()


@pytest.mark.timeout(240)
async def test_pipeline_runs_with_scram_credentials_and_acls(secured_pipe: Pipeline) -> None:
    events = structured_events(EVENTS, seed="scram")
    worker = secured_pipe.start_worker("w-scram")
    await secured_pipe.produce(events, by_org=True)
    tracker = await secured_pipe.wait_accounted(EVENTS, 150, watch=[worker])
    assert tracker.counts()["posted"] == EVENTS
    ledger = await secured_pipe.ledger()
    assert ledger["ok"] and ledger["entries"] == EVENTS, ledger


@pytest.mark.timeout(120)
async def test_another_user_is_denied_the_posted_entries(secured_pipe: Pipeline) -> None:
    from aiokafka import AIOKafkaConsumer
    from aiokafka.errors import TopicAuthorizationFailedError

    from pipeline.brokers import client_kwargs
    from pipeline.config import Settings

    other = Settings(kafka_bootstrap=secured_pipe.kafka_bootstrap, topic_prefix=secured_pipe.topic_prefix,
                     home=secured_pipe.home, **security("other", OTHER_PASSWORD))  # type: ignore[arg-type]
    consumer = AIOKafkaConsumer(other.topic("posted"), **client_kwargs(other), group_id=None,
                                auto_offset_reset="earliest")
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await consumer.start()
            for _ in range(50):
                await consumer.getmany(timeout_ms=200)
    finally:
        await consumer.stop()


@pytest.mark.timeout(120)
def test_wrong_password_is_refused_at_start_with_one_line(scram_broker: tuple[str, embedded_kafka.ScramSetup],
                                                          database_url: str, topic_prefix: str,
                                                          tmp_path: Path) -> None:
    bootstrap, _ = scram_broker
    env = {**os.environ, "HERA_KAFKA_BOOTSTRAP": bootstrap, "HERA_DATABASE_URL": database_url, "HERA_TOPIC_PREFIX": topic_prefix,
           "HERA_HOME": str(tmp_path),
           **{f"HERA_{k.upper()}": v for k, v in security("hera", "not-the-password").items()}}
    result = subprocess.run([sys.executable, "-m", "pipeline", "run"], env=env, capture_output=True, text=True,
                            timeout=90, stdin=subprocess.DEVNULL)
    assert result.returncode == 3, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("hera:")]
    assert len(lines) == 1 and "refused the credentials" in lines[0], result.stderr[-2000:]
    assert "not-the-password" not in result.stderr
