"""One Settings object for the whole product (pydantic-settings, environment prefix ``HERA_``).

Defaults point at the embedded services that ``hera services up`` starts under ``.hera/``;
set ``HERA_KAFKA_BOOTSTRAP`` / ``HERA_DATABASE_URL`` to use an external Kafka cluster and
PostgreSQL server instead (then nothing is started locally). Secrets are masked when printed.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

TOPICS = {
    "raw": "hera.transactions.raw",
    "validated": "hera.transactions.validated",
    "classified": "hera.transactions.classified",
    "posted": "hera.entries.posted",
    "deadletter": "hera.deadletter",
    "review": "hera.review.queue",
    "decisions": "hera.review.decisions",
    "audit": "hera.audit",
    "deferred": "hera.transactions.deferred",
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HERA_", env_file=None, extra="ignore")

    home: Path = Field(default=Path(".hera"), description="embedded services' data and state")
    kafka_bootstrap: str | None = Field(default=None, description="external brokers; unset = embedded")
    database_url: SecretStr | None = Field(default=None, description="external PostgreSQL; unset = embedded")
    topic_prefix: str = Field(default="", description="prepended to every topic name, e.g. 'staging.'")
    partitions: int = Field(default=4, ge=1, le=256)
    replication_factor: int = Field(default=1, ge=1)
    app_id: str = "hera-stream"
    worker_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    web_port: int | None = Field(default=None, description="Faust web port; unset = off")
    metrics_port: int | None = Field(default=None, description="Prometheus /metrics port; unset = off")
    auto_provision_orgs: bool = Field(default=True, description="register unknown orgs on first event")
    batch_size_max: int = Field(default=1000, ge=1, le=10_000,
                                description="events per agent batch (1000 measured ~10 % faster than 500)")
    batch_within_seconds: float = Field(default=0.2, gt=0)
    payload_bytes_max: int = Field(default=64 * 1024, ge=1024)
    rate_limit_per_minute: int = Field(default=100, ge=1)
    rate_limit_burst: int = Field(default=100, ge=1)
    session_timeout_seconds: float = 6.0
    heartbeat_interval_seconds: float = 1.0
    embedded_kafka_port: int | None = None
    embedded_pg_port: int | None = None
    log_level: str = "info"
    # --- issue 10: Kafka connections, security and topics (docs/operations.md)
    embedded_kafka_controller_port: int | None = None
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_key_password: SecretStr | None = None
    raw_retention_hours: float = Field(default=168.0, gt=0, le=24 * 365 * 10,
                                       description="retention of the raw topic (it holds card numbers: PCI scope)")
    faust_speedups: bool = Field(default=True, description="cheaper Faust per-event path (agents/faust_speedups.py)")
    faust_fixes_off: str = Field(default="", description="comma list of Faust fixes left out: re-testing only")
    topic_retention_hours: float = Field(default=168.0, gt=0, le=24 * 365 * 10,
                                         description="retention of the other non-compacted topics")

    @model_validator(mode="after")
    def _kafka_security_consistent(self) -> Settings:
        """Refuse, naming the setting, any Kafka security combination that cannot connect."""
        protocol = self.kafka_security_protocol
        if protocol.startswith("SASL_"):
            if self.kafka_sasl_mechanism is None:
                raise ValueError(f"HERA_KAFKA_SASL_MECHANISM is required with {protocol} "
                                 "(PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)")
            if not self.kafka_sasl_username or self.kafka_sasl_password is None:
                raise ValueError(f"HERA_KAFKA_SASL_USERNAME and HERA_KAFKA_SASL_PASSWORD are required "
                                 f"with HERA_KAFKA_SASL_MECHANISM={self.kafka_sasl_mechanism}")
        elif self.kafka_sasl_mechanism is not None:
            raise ValueError(f"HERA_KAFKA_SASL_MECHANISM is set but HERA_KAFKA_SECURITY_PROTOCOL={protocol} "
                             "does not use SASL (use SASL_PLAINTEXT or SASL_SSL)")
        for name in ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile"):
            path = getattr(self, name)
            if path is not None:
                if not protocol.endswith("SSL"):
                    raise ValueError(f"HERA_{name.upper()} is set but HERA_KAFKA_SECURITY_PROTOCOL={protocol} "
                                     "does not use TLS (use SSL or SASL_SSL)")
                if not path.is_file():
                    raise ValueError(f"HERA_{name.upper()}: no readable file at {path}")
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            raise ValueError("HERA_KAFKA_SSL_CERTFILE and HERA_KAFKA_SSL_KEYFILE go together "
                             "(a client certificate needs its key)")
        return self

    @property
    def embedded_state(self) -> dict[str, Any]:
        """Ports and pids of the embedded services (``<home>/services.json``), read each time:
        ``hera services up`` may have started them since these settings were made."""
        path = self.home / "services.json"
        try:
            return dict(json.loads(path.read_text()))
        except (FileNotFoundError, ValueError):
            return {}

    @property
    def kafka_external(self) -> bool:
        return self.kafka_bootstrap is not None

    @property
    def database_external(self) -> bool:
        return self.database_url is not None

    def bootstrap(self) -> str:
        """The Kafka bootstrap servers in use (external, or the running embedded broker)."""
        if self.kafka_bootstrap:
            return self.kafka_bootstrap
        state = self.embedded_state.get("kafka")
        if not state:
            raise RuntimeError("no Kafka broker: run `hera services up` or set HERA_KAFKA_BOOTSTRAP")
        return f"127.0.0.1:{state['port']}"

    def dsn(self) -> str:
        """The PostgreSQL DSN in use (external, or the running embedded server)."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        state = self.embedded_state.get("postgres")
        if not state:
            raise RuntimeError("no PostgreSQL: run `hera services up` or set HERA_DATABASE_URL")
        return f"postgresql://postgres@127.0.0.1:{state['port']}/hera"

    def topic(self, key: str) -> str:
        return f"{self.topic_prefix}{TOPICS[key]}"

    def public_dict(self) -> dict[str, Any]:
        """Settings as JSON-safe values, with secrets masked."""
        data = self.model_dump(mode="json")
        if self.database_url is not None:
            data["database_url"] = mask_dsn(self.database_url.get_secret_value())
        return data


def mask_dsn(dsn: str) -> str:
    """Hide the password in a DSN: postgresql://user:***@host/db."""
    if "@" not in dsn or "://" not in dsn:
        return dsn
    scheme, rest = dsn.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else dsn
