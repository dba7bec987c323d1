"""The embedded broker's set-up, without starting it: configuration, Java checks, one-line errors."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from pipeline.devtools.local import kafka as embedded_kafka
from pipeline.devtools.local.process import ServiceError, choose_port


def test_server_properties_one_kraft_node_on_loopback(tmp_path: Path) -> None:
    props = embedded_kafka.server_properties(tmp_path, 9092, 9093, None)
    lines = dict(line.split("=", 1) for line in props.splitlines())
    assert lines["process.roles"] == "broker,controller"
    assert lines["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert lines["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert lines["log.dirs"] == str(tmp_path / "data")
    assert lines["offsets.topic.replication.factor"] == "1"
    assert lines["auto.create.topics.enable"] == "false"
    assert "authorizer.class.name" not in lines


def test_scram_listener_with_deny_by_default_authorizer(tmp_path: Path) -> None:
    scram = embedded_kafka.ScramSetup(users={"hera": "pw"})
    props = embedded_kafka.server_properties(tmp_path, 9092, 9093, scram)
    assert "listeners=SASL_PLAINTEXT://127.0.0.1:9092," in props
    assert "allow.everyone.if.no.acl.found=false" in props
    assert f'password="{scram.admin_password}"' in props


def test_config_file_holding_the_admin_password_is_private(tmp_path: Path) -> None:
    props = embedded_kafka.write_config(tmp_path, 1, 2, embedded_kafka.ScramSetup())
    assert props.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(("banner", "major"), [
    ('openjdk version "17.0.15" 2025-04-15', 17),
    ('openjdk version "21" 2023-09-19', 21),
    ('java version "1.8.0_392"', 8),
])
def test_java_major_version(banner: str, major: int, tmp_path: Path) -> None:
    fake = tmp_path / "java"
    fake.write_text(f"#!/bin/sh\necho '{banner}' >&2\n")
    fake.chmod(0o755)
    assert embedded_kafka.java_major(str(fake)) == major


def test_old_java_is_refused_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bin").mkdir()
    fake = tmp_path / "bin" / "java"
    fake.write_text("#!/bin/sh\necho 'openjdk version \"11.0.2\"' >&2\n")
    fake.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(ServiceError, match="is Java 11; the embedded Kafka broker needs Java 17") as refused:
        embedded_kafka.check_java()
    assert "\n" not in str(refused.value)


def test_missing_java_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nowhere"))
    with pytest.raises(ServiceError, match=r"java not found.*HERA_KAFKA_BOOTSTRAP"):
        embedded_kafka.check_java()


def test_missing_jars_point_to_make_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERA_KAFKA_JARS", str(tmp_path))
    with pytest.raises(ServiceError, match="run `make setup`"):
        embedded_kafka.check_jars()


def test_a_configured_port_that_is_taken_is_refused_naming_the_setting() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(ServiceError, match=rf"port {port} is already in use.*HERA_EMBEDDED_KAFKA_PORT"):
            choose_port("kafka", "HERA_EMBEDDED_KAFKA_PORT", port, None)
        assert choose_port("kafka", "HERA_EMBEDDED_KAFKA_PORT", None, port) != port  # previous one taken: any


def test_pinned_version_is_read_from_the_pom() -> None:
    assert embedded_kafka.kafka_version().startswith("4.")


def test_cluster_ids_never_start_with_a_dash(tmp_path: Path) -> None:
    """The storage tool would read such an id as an option (seen: one start in ~64 failed)."""
    for i in range(300):
        home = tmp_path / str(i)
        home.mkdir()
        value = embedded_kafka.cluster_id(home)
        assert not value.startswith("-") and len(value) == 22
        assert embedded_kafka.cluster_id(home) == value  # kept
