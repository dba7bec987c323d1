"""Kafka security settings: every combination that cannot work is refused naming the setting, and the
same connection reaches aiokafka, Faust and librdkafka clients; secrets never print."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from pipeline.brokers import client_kwargs, librdkafka_config, pipeline_topics, topic_config
from pipeline.config import Settings

SASL = {"kafka_bootstrap": "b:9092", "kafka_security_protocol": "SASL_PLAINTEXT",
        "kafka_sasl_mechanism": "SCRAM-SHA-256", "kafka_sasl_username": "hera", "kafka_sasl_password": "s3cret"}


@pytest.mark.parametrize(("settings", "named"), [
    ({"kafka_security_protocol": "SASL_SSL"}, "HERA_KAFKA_SASL_MECHANISM"),
    ({"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_mechanism": "PLAIN"}, "HERA_KAFKA_SASL_USERNAME"),
    ({"kafka_sasl_mechanism": "PLAIN"}, "HERA_KAFKA_SASL_MECHANISM is set but"),
    ({"kafka_security_protocol": "SSL", "kafka_ssl_cafile": "/no/such/ca.pem"}, "HERA_KAFKA_SSL_CAFILE: no readable"),
    ({"kafka_security_protocol": "KERBEROS"}, "kafka_security_protocol"),
    ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "GSSAPI"}, "kafka_sasl_mechanism"),
])
def test_settings_that_cannot_work_are_refused(settings: dict[str, str], named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        Settings(**settings)  # type: ignore[arg-type]


def test_tls_files_with_a_plaintext_protocol_are_refused(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    with pytest.raises(ValidationError, match="HERA_KAFKA_SSL_CAFILE is set but"):
        Settings(kafka_ssl_cafile=ca)
    with pytest.raises(ValidationError, match="go together"):
        Settings(kafka_security_protocol="SSL", kafka_ssl_certfile=ca)


def test_sasl_reaches_aiokafka_and_librdkafka() -> None:
    settings = Settings(**SASL)  # type: ignore[arg-type]
    kwargs = client_kwargs(settings)
    assert kwargs == {"bootstrap_servers": "b:9092", "security_protocol": "SASL_PLAINTEXT",
                      "sasl_mechanism": "SCRAM-SHA-256", "sasl_plain_username": "hera",
                      "sasl_plain_password": "s3cret"}
    conf = librdkafka_config(settings)
    assert conf["security.protocol"] == "sasl_plaintext" and conf["sasl.password"] == "s3cret"


def test_faust_gets_sasl_credentials() -> None:
    from pipeline.brokers import faust_credentials

    creds = faust_credentials(Settings(**SASL))  # type: ignore[arg-type]
    assert creds.username == "hera" and creds.password == "s3cret"
    assert str(creds.mechanism.value) == "SCRAM-SHA-256"
    assert faust_credentials(Settings()) is None


def test_the_password_is_masked_when_settings_are_printed() -> None:
    printed = str(Settings(**SASL).public_dict())  # type: ignore[arg-type]
    assert "s3cret" not in printed and "hera" in printed


def test_raw_topic_retention_is_its_own_setting() -> None:
    settings = Settings(raw_retention_hours=24, topic_retention_hours=72, topic_prefix="p.")
    assert topic_config(settings, "raw")["retention.ms"] == str(24 * 3_600_000)
    assert topic_config(settings, "posted")["retention.ms"] == str(72 * 3_600_000)
    assert {spec.name for spec in pipeline_topics(settings)} >= {"p.hera.transactions.raw", "p.hera.entries.posted"}
