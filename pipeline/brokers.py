"""Connecting to Kafka the same way everywhere: security settings, topics and their configuration.

Every client the product creates (the Faust app, aiokafka producers, consumers and admin clients,
librdkafka clients in tests and tools) takes its connection settings from here, so a secured
cluster (``HERA_KAFKA_SECURITY_PROTOCOL`` SSL / SASL_PLAINTEXT / SASL_SSL, SASL PLAIN or SCRAM)
works for all of them or for none.

Topics are created by ``ensure_topics`` before any worker starts (Faust would create a source topic
with one partition), with what Kafka users expect: the raw topic's retention is a setting (it holds
card numbers: PCI scope), compacted topics where a key's last value is what counts, the configured
replication factor. A worker refuses to start against existing topics whose partition count differs
from ``HERA_PARTITIONS``: keys would land on other partitions than the per-organisation state.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.config import TOPICS, Settings

ADMIN_TIMEOUT_SECONDS = 15.0
HOUR_MS = 3_600_000
TOPIC_ALREADY_EXISTS = 36  # Kafka protocol error code


class TopicLayoutError(RuntimeError):
    """Existing topics do not match the configuration (partition count); the worker must not start."""


# ---------------------------------------------------------------- client security

def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if not settings.kafka_security_protocol.endswith("SSL"):
        return None
    context = ssl.create_default_context(
        cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None)
    if settings.kafka_ssl_certfile is not None:
        password = settings.kafka_ssl_key_password
        context.load_cert_chain(str(settings.kafka_ssl_certfile),
                                str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
                                password.get_secret_value() if password else None)
    return context


def client_kwargs(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for every aiokafka client: ``AIOKafkaProducer(**client_kwargs(s), ...)``."""
    kwargs: dict[str, Any] = {"bootstrap_servers": settings.bootstrap(),
                              "security_protocol": settings.kafka_security_protocol}
    context = ssl_context(settings)
    if context is not None:
        kwargs["ssl_context"] = context
    if settings.kafka_sasl_mechanism is not None:
        kwargs["sasl_mechanism"] = settings.kafka_sasl_mechanism
        kwargs["sasl_plain_username"] = settings.kafka_sasl_username
        kwargs["sasl_plain_password"] = (settings.kafka_sasl_password.get_secret_value()
                                         if settings.kafka_sasl_password else None)
    return kwargs


def faust_credentials(settings: Settings) -> Any:
    """The Faust app's ``broker_credentials`` (None for PLAINTEXT)."""
    import faust

    protocol = settings.kafka_security_protocol
    context = ssl_context(settings)
    if protocol.startswith("SASL_"):
        password = settings.kafka_sasl_password
        return faust.SASLCredentials(username=settings.kafka_sasl_username,
                                     password=password.get_secret_value() if password else None,
                                     mechanism=settings.kafka_sasl_mechanism, ssl_context=context)
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def librdkafka_config(settings: Settings) -> dict[str, Any]:
    """The same connection for librdkafka clients (confluent-kafka, kcat). ``murmur2_random`` puts
    keyed records where Java clients, aiokafka and our workers put them (librdkafka's default,
    ``consistent_random``, does not)."""
    config: dict[str, Any] = {"bootstrap.servers": settings.bootstrap(),
                              "security.protocol": settings.kafka_security_protocol.lower()}
    if settings.kafka_sasl_mechanism is not None:
        password = settings.kafka_sasl_password
        config.update({"sasl.mechanism": settings.kafka_sasl_mechanism,
                       "sasl.username": settings.kafka_sasl_username,
                       "sasl.password": password.get_secret_value() if password else None})
    for key, path in (("ssl.ca.location", settings.kafka_ssl_cafile),
                      ("ssl.certificate.location", settings.kafka_ssl_certfile),
                      ("ssl.key.location", settings.kafka_ssl_keyfile)):
        if path is not None:
            config[key] = str(path)
    return config


# ---------------------------------------------------------------- topics

@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    config: Mapping[str, str]


def topic_config(settings: Settings, key: str) -> dict[str, str]:
    """Per-topic configuration: retention (the raw topic's is its own setting), sizes."""
    hours = settings.raw_retention_hours if key == "raw" else settings.topic_retention_hours
    return {"retention.ms": str(int(hours * HOUR_MS)), "max.message.bytes": "2097152"}


def pipeline_topics(settings: Settings) -> list[TopicSpec]:
    return [TopicSpec(settings.topic(key), settings.partitions, settings.replication_factor,
                      topic_config(settings, key)) for key in TOPICS]


def admin_kwargs(target: Settings | str) -> dict[str, Any]:
    """Connection of a client to ``target``: the configured cluster, or a bare bootstrap (tests, tools)."""
    return client_kwargs(target) if isinstance(target, Settings) else {"bootstrap_servers": target}


async def ensure_topics(target: Settings | str, topics: Iterable[str | TopicSpec] | None = None, *,
                        partitions: int | None = None, replication_factor: int | None = None,
                        config: Mapping[str, str] | None = None, check_partitions: bool = True,
                        timeout_seconds: float = ADMIN_TIMEOUT_SECONDS) -> list[str]:
    """Create the missing topics; refuse (``TopicLayoutError``) existing ones of another partition count.

    ``topics`` defaults to the pipeline's own (with their retention); plain names get ``partitions``
    (else ``HERA_PARTITIONS``), ``replication_factor`` and ``config``.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import for_code

    settings = target if isinstance(target, Settings) else None
    if topics is None:
        if settings is None:
            raise ValueError("ensure_topics needs Settings to know the pipeline's topics")
        topics = pipeline_topics(settings)
    default_partitions = partitions or (settings.partitions if settings else 1)
    default_replication = replication_factor or (settings.replication_factor if settings else 1)
    wanted = [t if isinstance(t, TopicSpec) else
              TopicSpec(t, default_partitions, default_replication, dict(config or {})) for t in topics]
    admin = AIOKafkaAdminClient(request_timeout_ms=int(timeout_seconds * 1000), **admin_kwargs(target))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        if check_partitions:
            await _check_partitions(admin, [spec for spec in wanted if spec.name in existing])
        missing = [spec for spec in wanted if spec.name not in existing]
        created: list[str] = []
        for spec in missing:
            response = await admin.create_topics([NewTopic(spec.name, spec.partitions, spec.replication_factor,
                                                           topic_configs=dict(spec.config))])
            for name, code, *rest in response.topic_errors:
                if code == TOPIC_ALREADY_EXISTS:  # another worker created it meanwhile
                    continue
                if code:
                    error = for_code(code)
                    raise error(f"creating topic {name}: {rest[0] if rest and rest[0] else error.__name__}")
                created.append(name)
        await _wait_visible(admin, [spec.name for spec in missing], timeout_seconds)
        return created
    finally:
        await admin.close()


async def _wait_visible(admin: Any, names: list[str], timeout_seconds: float) -> None:
    """A created topic reaches the brokers' metadata a moment later: wait, so callers can use it."""
    deadline = asyncio.get_running_loop().time() + timeout_seconds
    while names:
        names = [n for n in names if n not in set(await admin.list_topics())]
        if not names:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"topics not visible after {timeout_seconds:.0f}s: {', '.join(names)}")
        await asyncio.sleep(0.05)


async def _check_partitions(admin: Any, specs: list[TopicSpec]) -> None:
    if not specs:
        return
    described = await admin.describe_topics([spec.name for spec in specs])
    counts = {t["topic"]: len(t["partitions"]) for t in described}
    wrong = [f"{s.name} has {counts[s.name]}, not {s.partitions}" for s in specs
             if counts.get(s.name, s.partitions) != s.partitions]
    if wrong:
        raise TopicLayoutError(
            f"HERA_PARTITIONS: existing topics have another partition count ({'; '.join(wrong)}); "
            "set HERA_PARTITIONS to match, or use a new HERA_TOPIC_PREFIX")


async def partition_counts(target: Settings | str, names: Iterable[str]) -> dict[str, int]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**admin_kwargs(target))
    await admin.start()
    try:
        described = await admin.describe_topics(list(names))
        return {t["topic"]: len(t["partitions"]) for t in described if not t.get("error_code")}
    finally:
        await admin.close()


async def delete_topics(target: Settings | str, names: Iterable[str]) -> list[str]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**admin_kwargs(target))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [n for n in names if n in existing]
        if doomed:
            await admin.delete_topics(doomed)
        return doomed
    finally:
        await admin.close()


# ---------------------------------------------------------------- connection check

class BrokerConnectionError(RuntimeError):
    """The configured Kafka cluster cannot be reached or refused us; the message says which setting."""


async def check_connection(settings: Settings, timeout_seconds: float = ADMIN_TIMEOUT_SECONDS) -> int:
    """Connect once with the configured security; the number of brokers, or one clear error."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError, SaslAuthenticationFailed, UnsupportedSaslMechanismError

    who = (f"as {settings.kafka_sasl_username!r} with {settings.kafka_sasl_mechanism} "
           if settings.kafka_sasl_mechanism else "")
    where = f"{settings.bootstrap()} ({settings.kafka_security_protocol}) {who}".strip()
    admin = AIOKafkaAdminClient(request_timeout_ms=int(timeout_seconds * 1000), **client_kwargs(settings))
    aiokafka_log = logging.getLogger("aiokafka")
    level = aiokafka_log.level
    aiokafka_log.setLevel(logging.CRITICAL)  # the error below says it once, clearly
    try:
        await asyncio.wait_for(admin.start(), timeout_seconds)
        cluster = await asyncio.wait_for(admin.describe_cluster(), timeout_seconds)
    except (KafkaError, OSError, TimeoutError, ssl.SSLError) as exc:
        cause = await _first_connection_error(settings, timeout_seconds) or exc
        reason = f"{type(cause).__name__}: {cause}".rstrip(": ")
        if isinstance(cause, SaslAuthenticationFailed | UnsupportedSaslMechanismError):
            raise BrokerConnectionError(
                f"Kafka at {where} refused the credentials: check HERA_KAFKA_SASL_USERNAME, "
                f"HERA_KAFKA_SASL_PASSWORD and HERA_KAFKA_SASL_MECHANISM ({reason})") from exc
        if isinstance(cause, ssl.SSLError):
            raise BrokerConnectionError(
                f"TLS with Kafka at {where} failed: check HERA_KAFKA_SSL_CAFILE, HERA_KAFKA_SSL_CERTFILE "
                f"and HERA_KAFKA_SSL_KEYFILE ({reason})") from exc
        raise BrokerConnectionError(
            f"cannot reach Kafka at {where}: {reason}; check HERA_KAFKA_BOOTSTRAP and "
            "HERA_KAFKA_SECURITY_PROTOCOL (or run `hera services up`)") from exc
    finally:
        aiokafka_log.setLevel(level)
        await admin.close()
    return len(cluster.get("brokers", []))


async def _first_connection_error(settings: Settings, timeout_seconds: float) -> BaseException | None:
    """The real reason a bootstrap failed (aiokafka only says "Unable to bootstrap"): one direct
    connection with the same security to the first bootstrap server."""
    from aiokafka.conn import create_conn

    kwargs = client_kwargs(settings)
    host, _, port = kwargs.pop("bootstrap_servers").split(",")[0].strip().rpartition(":")
    try:
        conn = await asyncio.wait_for(create_conn(host, int(port), request_timeout_ms=int(timeout_seconds * 1000),
                                                  **kwargs), timeout_seconds)
    except BaseException as exc:
        if isinstance(exc, asyncio.CancelledError):
            raise
        return exc
    conn.close()
    return None


async def topic_configs(target: Settings | str, names: Iterable[str]) -> dict[str, dict[str, str]]:
    """Each topic's effective configuration (``cleanup.policy``, ``retention.ms`` …)."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = AIOKafkaAdminClient(**admin_kwargs(target))
    await admin.start()
    try:
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
    finally:
        await admin.close()
    return {res[3]: {entry[0]: entry[1] for entry in res[4]} for response in responses for res in response.resources}
