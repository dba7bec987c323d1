"""One Settings object for the whole product (pydantic-settings, environment prefix ``HERA_``).

Defaults point at the embedded services that ``hera services up`` starts under ``.hera/``;
set ``HERA_KAFKA_BOOTSTRAP`` / ``HERA_DATABASE_URL`` to use an external Kafka cluster and
PostgreSQL server instead (then nothing is started locally). Secrets are masked when printed.
"""

from __future__ import annotations

import json
import os
import re
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.domain.errors import HeraError

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
    payload_bytes_max: int = Field(default=64 * 1024, ge=1024)
    rate_limit_per_minute: int = Field(default=100, ge=1)
    rate_limit_burst: int = Field(default=100, ge=1)
    session_timeout_seconds: float = 6.0
    heartbeat_interval_seconds: float = 1.0
    embedded_kafka_port: int | None = None
    embedded_pg_port: int | None = None
    log_level: str = "info"
    # --- issue 10: Kafka connections, security and topics (docs/kafka.md)
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
    # --- issue 11: latency (applied and explained in agents/tuning.py; measured in BENCHMARKS.md)
    kafka_fetch_max_wait_ms: int = Field(default=100, ge=0, le=1500,
                                         description="longest a worker's fetch waits on the broker for new records")
    producer_linger_ms: float = Field(default=0.0, ge=0, le=100,
                                      description="how long the worker's producer waits to fill a record batch")
    producer_batch_bytes: int = Field(default=512 * 1024, ge=16 * 1024, le=16 * 1024 * 1024,
                                      description="largest record batch a worker produces to one partition")
    producer_compression: Literal["none", "lz4", "zstd", "gzip", "snappy"] = Field(
        default="none", description="compression of the record batches a worker produces")
    event_loop: Literal["asyncio", "uvloop"] = Field(
        default="asyncio", description="the worker's event loop: the standard library's or uvloop (libuv, in C)")
    commit_interval_seconds: float = Field(default=0.25, gt=0, le=10,
                                           description="how often a worker commits the offsets it released")
    batch_in_flight_max: int = Field(default=2, ge=1, le=8,
                                     description="batches between take and release per agent (overlap of writes)")
    batch_in_flight_backlog_max: int = Field(
        default=2, ge=1, le=8, description="the same under backlog (batches of at least half HERA_BATCH_SIZE_MAX)")
    table_standby_replicas: int = Field(default=0, ge=0, le=8,
                                        description="standby copies of each admission-table partition on other "
                                                    "workers (faster failover, more CPU per worker)")
    audit_linger_ms: int = Field(default=250, ge=0, le=10_000,
                                 description="how long the audit agent keeps a batch open (fewer, larger chain appends)")
    profile_file: Path | None = Field(default=None, description="where a worker writes its per-hop time on exit")
    # --- issue 15: operability (probes, logs, circuit breaker, caches)
    metrics_host: str = Field(default="127.0.0.1", description="bind address of /metrics and the probes; "
                                                                "0.0.0.0 in a container")
    log_format: Literal["text", "json"] = Field(default="text", description="json: one JSON object per line")
    cache_url: SecretStr | None = Field(default=None, description="redis://[:password@]host:port/db for shared "
                                                                  "caches; unset = in-process memory")
    breaker_failures_max: int = Field(default=5, ge=1, description="consecutive database faults that open the "
                                                                   "circuit breaker")
    breaker_reset_seconds: float = Field(default=5.0, gt=0, description="open breaker: wait before a trial call")
    prepare_on_start: bool = Field(default=True, description="`hera run` creates topics and migrates first; off "
                                                             "where a migration Job does it (`hera prepare`)")
    # --- issue 14: review workspace (pipeline/web)
    decision_key: SecretStr | None = Field(
        default=None, min_length=32, description="HMAC key the web app signs review decisions with and the worker checks;"
                                  " unset = generated once under <home>/decision.key (mode 0600)")
    web_session_hours: float = Field(default=8.0, gt=0, le=24 * 30, description="web sign-in lifetime")
    web_lockout_failures: int = Field(default=5, ge=1, le=100, description="failed sign-ins before lock-out")
    web_lockout_minutes: float = Field(default=15.0, gt=0, description="how long a locked-out user waits")
    # --- issue 12: data protection and integrity (SECURITY.md)
    audit_key: SecretStr | None = Field(default=None, description="HMAC key of the audit chain (>= 32 bytes); "
                                        "unset = audit_key_file, else <home>/audit.key (generated, mode 0600)")
    audit_key_file: Path | None = Field(default=None, description="file holding the audit chain's HMAC key")
    occurred_at_earliest: datetime = Field(default=datetime(1970, 1, 1, tzinfo=UTC),
                                           description="events dated before are rejected OCCURRED_AT_IMPLAUSIBLE")
    occurred_at_latest: datetime = Field(default=datetime(2100, 1, 1, tzinfo=UTC),
                                         description="events dated at or after are rejected OCCURRED_AT_IMPLAUSIBLE")
    worker_database_url: SecretStr | None = Field(
        default=None, description="the worker's own login (hera_worker: no BYPASSRLS, not the owner); unset = "
        "embedded: generated password under <home>/postgres/; external: HERA_DATABASE_URL")

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

    @field_validator("rate_limit_per_minute")
    @classmethod
    def _per_minute_in_bucket(cls, value: int) -> int:
        from pipeline.admission.rate_limit import PER_MINUTE_MAX
        if value > PER_MINUTE_MAX:
            raise ValueError(f"HERA_RATE_LIMIT_PER_MINUTE={value}: at most {PER_MINUTE_MAX} (the token bucket's limit)")
        return value

    @field_validator("rate_limit_burst")
    @classmethod
    def _burst_in_bucket(cls, value: int) -> int:
        from pipeline.admission.rate_limit import BURST_MAX
        if value > BURST_MAX:
            raise ValueError(f"HERA_RATE_LIMIT_BURST={value}: at most {BURST_MAX} (the token bucket's limit)")
        return value

    @field_validator("occurred_at_earliest", "occurred_at_latest")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    def check(self) -> None:
        """Refuse settings that cannot work, before anything starts: raise ``SettingsError`` with one
        line naming the setting (the worker calls this at start-up; ``settings_error_line`` does the
        same for a ``ValidationError`` raised while the settings were read)."""
        from pipeline.domain.validate import PAYLOAD_BYTES_MAX

        problems = [
            (self.occurred_at_earliest >= self.occurred_at_latest,
             "HERA_OCCURRED_AT_EARLIEST: must be before HERA_OCCURRED_AT_LATEST"),
            (self.payload_bytes_max > PAYLOAD_BYTES_MAX_LIMIT,
             f"HERA_PAYLOAD_BYTES_MAX={self.payload_bytes_max}: at most {PAYLOAD_BYTES_MAX_LIMIT} "
             f"(validation's limit is {PAYLOAD_BYTES_MAX} by default)"),
            (self.heartbeat_interval_seconds >= self.session_timeout_seconds,
             "HERA_HEARTBEAT_INTERVAL_SECONDS: must be below HERA_SESSION_TIMEOUT_SECONDS"),
            (self.log_level.lower() not in LOG_LEVELS,
             f"HERA_LOG_LEVEL={self.log_level}: one of {', '.join(LOG_LEVELS)}"),
            (self.audit_key is not None and len(self.audit_key.get_secret_value().encode()) < AUDIT_KEY_BYTES_MIN,
             f"HERA_AUDIT_KEY: at least {AUDIT_KEY_BYTES_MIN} bytes"),
            (self.audit_key_file is not None and not self.audit_key_file.is_file(),
             f"HERA_AUDIT_KEY_FILE={self.audit_key_file}: no such file"),
            (self.database_url is not None and not _dsn_usable(self.database_url.get_secret_value()),
             "HERA_DATABASE_URL: not a postgresql:// URL or key=value connection string"),
            *((port is not None and not 1 <= port <= 65535, f"HERA_{name.upper()}={port}: not a TCP port")
              for name, port in (("web_port", self.web_port), ("metrics_port", self.metrics_port))),
        ]
        for bad, line in problems:
            if bad:
                raise SettingsError(line)

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
        password_file = self.home / "postgres" / "superuser.password"   # scram-sha-256 (pipeline.devtools.services)
        login = f"postgres:{password_file.read_text().strip()}" if password_file.exists() else "postgres"
        return f"postgresql://{login}@127.0.0.1:{state['port']}/hera"

    def worker_dsn(self) -> str:
        """The DSN the worker's ledger store logs in with: ``hera_worker`` (see ``ledger.roles``).
        ``HERA_WORKER_DATABASE_URL`` when set; on the embedded server (``HERA_DATABASE_URL`` unset, or
        naming a database of that server, as ``hera bench`` does) ``hera_worker`` with the generated
        password; else ``HERA_DATABASE_URL``, which the worker refuses at start-up if it is privileged."""
        if self.worker_database_url is not None:
            return self.worker_database_url.get_secret_value()
        if self.database_url is not None and not self.worker_login_embedded:
            return self.database_url.get_secret_value()
        from pipeline.ledger.roles import WORKER_ROLE, with_login
        return with_login(self.dsn(), WORKER_ROLE, self.embedded_worker_password())

    @property
    def worker_login_embedded(self) -> bool:
        """True when the worker logs in as ``hera_worker`` with the embedded server's generated password
        (``prepare`` sets it): no ``HERA_WORKER_DATABASE_URL``, and the database is the embedded one."""
        if self.worker_database_url is not None:
            return False
        if self.database_url is None:
            return True
        from urllib.parse import urlsplit
        state = self.embedded_state.get("postgres")
        if not state:
            return False
        try:
            parts = urlsplit(self.database_url.get_secret_value())
            return parts.scheme.startswith("postgres") and parts.hostname in ("127.0.0.1", "localhost") \
                and parts.port == int(state["port"])
        except (ValueError, KeyError, TypeError):
            return False

    def embedded_worker_password(self) -> str:
        from pipeline.keyfiles import secret_file
        return secret_file(self.home / "postgres" / "worker.password")

    def topic(self, key: str) -> str:
        return f"{self.topic_prefix}{TOPICS[key]}"

    def public_dict(self) -> dict[str, Any]:
        """Settings as JSON-safe values, with secrets masked."""
        data = self.model_dump(mode="json")
        for name in ("database_url", "worker_database_url"):
            secret = getattr(self, name)
            if secret is not None:
                data[name] = mask_dsn(secret.get_secret_value())
        return data

    def occurred_at_window(self) -> Any:
        """The plausible business dates, as validation takes them."""
        from pipeline.domain.validate import OccurredAtWindow
        return OccurredAtWindow(self.occurred_at_earliest, self.occurred_at_latest)


PAYLOAD_BYTES_MAX_LIMIT = 1024 * 1024   # Kafka's default message.max.bytes
AUDIT_KEY_BYTES_MIN = 32
LOG_LEVELS = ("critical", "error", "warn", "warning", "info", "debug")
SECRET_PARAMETERS = ("password", "sslpassword")
MASK = "***"
_KEYWORD_SECRET = re.compile(r"(?i)\b(" + "|".join(SECRET_PARAMETERS) + r")(\s*=\s*)('(?:[^'\\]|\\.)*'?|\S*)")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class SettingsError(ValueError, HeraError):
    """A setting that cannot work; the message is one line naming it."""


def settings_error_line(exc: Exception) -> str:
    """One line naming the first bad setting of a pydantic ``ValidationError`` (or any error)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        name = "HERA_" + "_".join(str(part) for part in first.get("loc", ())).upper()
        message = str(first.get("msg", "")).removeprefix("Value error, ")
        return message if message.startswith(name) else f"{name}: {message}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def mask_dsn(dsn: str) -> str:
    """Hide every password in a DSN, in each form libpq takes.

    ``postgresql://user:***@host/db?sslpassword=***`` (the userinfo password and any ``password`` /
    ``sslpassword`` query parameter), and ``host=h user=u password=*** sslpassword=***`` (keyword
    form, quoted values included). Anything else is left as it is.
    """
    if _URL.match(dsn):
        scheme, rest = dsn.split("://", 1)
        authority, sep, tail = _split_authority(rest)
        if "@" in authority:
            creds, hosts = authority.rsplit("@", 1)
            if ":" in creds:
                authority = f"{creds.split(':', 1)[0]}:{MASK}@{hosts}"
        if "?" in tail:
            path, query = tail.split("?", 1)
            tail = path + "?" + "&".join(_mask_query_item(item) for item in query.split("&"))
        return f"{scheme}://{authority}{sep}{tail}"
    return _KEYWORD_SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", dsn)


def _split_authority(rest: str) -> tuple[str, str, str]:
    """``user:pw@hosts`` and what follows it (``/db?…`` or ``?…``); the password may hold ``/`` or ``?``."""
    at = rest.rfind("@")
    cut = len(rest)
    for stop in ("/", "?"):
        index = rest.find(stop, at + 1)
        if index != -1:
            cut = min(cut, index)
    return rest[:cut], "", rest[cut:]


def _mask_query_item(item: str) -> str:
    name, eq, _ = item.partition("=")
    return f"{name}={MASK}" if eq and name.lower() in SECRET_PARAMETERS else item


def _dsn_usable(dsn: str) -> bool:
    if _URL.match(dsn):
        return dsn.split("://", 1)[0] in ("postgres", "postgresql")
    return "=" in dsn
