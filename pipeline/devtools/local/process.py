"""Processes and ports of the embedded services: free ports, liveness, termination, log tails."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from pathlib import Path

from pipeline.domain.errors import HeraError

STOP_TIMEOUT_SECONDS = 15.0


class ServiceError(RuntimeError, HeraError):
    """An embedded service could not be started or stopped; the message says why and what to do."""


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


def ensure_free(name: str, port: int, setting: str) -> None:
    if not port_is_free(port):
        raise ServiceError(f"{name}: port {port} is already in use on 127.0.0.1; "
                           f"free it or choose another with {setting}")


def choose_port(name: str, setting: str, configured: int | None, previous: int | None) -> int:
    """An explicitly configured port must be free (clear error); else reuse the last one, else any."""
    if configured is not None:
        ensure_free(name, configured, setting)
        return configured
    if previous is not None and port_is_free(previous):
        return previous
    return free_port()


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
    while pid_alive(pid) and time.monotonic() < deadline + 5:
        time.sleep(0.05)
