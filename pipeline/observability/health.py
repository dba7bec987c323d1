"""The worker's probe and metrics endpoints, served by one small HTTP server on the metrics port.

    GET /livez     200 while the worker's event loop is turning (its heartbeat is fresh)
    GET /readyz    200 when every registered readiness check passes (broker and database
                   reachable, table recovery complete, database breaker closed), else 503
    GET /startupz  200 once the worker has finished starting (topics, migration, first recovery)
    GET /metrics   the Prometheus exposition of this process's registry
    anything else  404

Bodies are JSON saying what passed and what failed, e.g.
``{"status": "fail", "checks": {"database": {"ok": false, "detail": "ConnectionRefusedError"}}}``.

The server runs on its own thread (like prometheus_client's), so a probe is answered even while the
worker's loop is busy with a batch; liveness is therefore judged by a heartbeat that the worker's
loop stamps (``Health.beat``), not by the server answering. Checks are registered by the worker
(``agents/observe.py``): plain callables returning ``None``/``True`` (pass), ``False`` or a string
(fail, with that detail), or raising; a coroutine function is run on the probe's thread with a
timeout. Binds where ``HERA_METRICS_HOST`` says (loopback by default; ``0.0.0.0`` in a container).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

CHECK_TIMEOUT_SECONDS = 2.0
HEARTBEAT_STALE_SECONDS = 30.0  # a loop that has not turned for this long is wedged

Check = Callable[[], Any]


@dataclass
class Health:
    """What the probes report. Thread-safe enough for its use: flags and floats written by the
    worker's loop, read by the server's threads."""

    heartbeat_stale_seconds: float = HEARTBEAT_STALE_SECONDS
    check_timeout_seconds: float = CHECK_TIMEOUT_SECONDS
    readiness: dict[str, Check] = field(default_factory=dict)
    started_at: float | None = None
    last_beat: float = field(default_factory=time.monotonic)

    def add_readiness_check(self, name: str, check: Check) -> None:
        self.readiness[name] = check

    def beat(self) -> None:
        """Stamp the heartbeat (call from the worker's loop, every second or so)."""
        self.last_beat = time.monotonic()

    def mark_started(self) -> None:
        self.started_at = time.time()

    def livez(self) -> tuple[int, dict[str, Any]]:
        age = time.monotonic() - self.last_beat
        ok = age <= self.heartbeat_stale_seconds
        return _report({"event_loop": {"ok": ok, "detail": f"heartbeat {age:.1f}s ago"}})

    def startupz(self) -> tuple[int, dict[str, Any]]:
        ok = self.started_at is not None
        return _report({"started": {"ok": ok, "detail": "started" if ok else "starting"}})

    def readyz(self) -> tuple[int, dict[str, Any]]:
        results = {name: self._run(check) for name, check in list(self.readiness.items())}
        if self.started_at is None:
            results["started"] = {"ok": False, "detail": "starting"}
        return _report(results)

    def _run(self, check: Check) -> dict[str, Any]:
        try:
            if inspect.iscoroutinefunction(check):
                outcome = asyncio.run(asyncio.wait_for(check(), self.check_timeout_seconds))
            else:
                outcome = check()
        except Exception as exc:  # a failing check is a report, not a crash of the probe
            return {"ok": False, "detail": f"{type(exc).__name__}: {exc}"[:200]}
        if outcome is None or outcome is True:
            return {"ok": True}
        return {"ok": False, "detail": "failed" if outcome is False else str(outcome)[:200]}


def _report(checks: dict[str, dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    ok = all(c["ok"] for c in checks.values())
    return (200 if ok else 503), {"status": "ok" if ok else "fail", "checks": checks}


class _Handler(BaseHTTPRequestHandler):
    health: Health  # set on the subclass made per server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
            return
        probe = {"/livez": self.health.livez, "/readyz": self.health.readyz,
                 "/startupz": self.health.startupz}.get(path)
        if probe is None:
            status, body = 404, {"status": "not found", "paths": ["/livez", "/readyz", "/startupz", "/metrics"]}
        else:
            status, body = probe()
        self._send(status, json.dumps(body).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds: not worth a line
        pass


def serve(health: Health, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """Start the server on a daemon thread; returns it (``server.server_address``, ``shutdown()``)."""
    handler = type("HealthHandler", (_Handler,), {"health": health})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="hera-health", daemon=True).start()
    return server
