"""The one gate for every change we make to Faust's (and mode's) code at run time.

We patch third-party internals in two modules, each patch kept only with a reason a test or a
benchmark shows on real Apache Kafka (their docstrings name it):

* ``agents.faust_fixes``: records never processed, or acked unprocessed, around a rebalance;
* ``agents.faust_speedups``: Faust's per-event cost.

``install(app, settings)`` applies them, and refuses to run (``PatchVersionError``, one line) unless
faust-streaming, mode-streaming and aiokafka are exactly the versions they were written against:
a patch of another version's internals is a silent bug. ``UPSTREAM`` fingerprints the source of
every upstream function we replace or whose behaviour we rely on; ``tests/unit/test_patches.py``
recomputes them from the installed packages' files, so an upgrade fails loudly there first.

Switches (``Settings``): ``HERA_FAUST_SPEEDUPS=0`` leaves the per-event path as shipped;
``HERA_FAUST_FIXES_OFF=seek,ack`` leaves named fixes out (for re-testing whether each is still
needed; never in production).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import importlib.util
from pathlib import Path
from typing import Any

from pipeline.config import Settings
from pipeline.domain.errors import HeraError

PINNED = {"faust-streaming": "0.15.3", "mode-streaming": "0.7.1", "aiokafka": "0.14.0"}

#: "module:Class.function" (or "module:" for a whole compiled module) -> sha256 prefix of its source
UPSTREAM = {
    "faust.transport.consumer:Consumer.perform_seek": "b2fa31dd2a8784d3",
    "faust.transport.consumer:Consumer.getmany": "fb4700d31489b3b4",
    "faust.transport.consumer:Consumer._drain_messages": "8308d11bc7a290dc",
    "faust.transport.consumer:Consumer._add_gap": "d28ad8e076b67739",
    "faust.events:Event.ack": "e9517437dd9a2a8f",
    "faust.streams:Stream._py_aiter": "fabb39a9b4ceeadc",
    "faust.tables.recovery:Recovery._resume_streams": "fec849656dbcea2c",
    "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread.verify_event_path": "f7025e20d8664e1f",
    "faust.transport.producer:ProducerBuffer.wait_until_ebb": "4c1ae6012885602f",
    "faust.app.base:App.create_event": "079fefbd78f4efd4",
    "mode.utils.queues:FlowControlEvent.resume": "90d74eddd2aa7ed9",
    "faust._cython.streams:": "0041622f4a251188",
    "faust.tables.recovery:Recovery.on_recovery_completed": "2720e26cb703b2fa",
}

FIXES = ("seek", "getmany", "ack", "resume", "verify_event_path")


class PatchVersionError(RuntimeError, HeraError):
    """The installed faust-streaming / mode-streaming / aiokafka are not the versions our patches fit."""


def installed_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PINNED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def check_versions() -> None:
    wrong = [f"{name} {have} (patches fit {PINNED[name]})" for name, have in installed_versions().items()
             if have != PINNED[name]]
    if wrong:
        raise PatchVersionError(
            "refusing to patch Faust internals written for other versions: " + ", ".join(wrong)
            + "; install the pinned versions (constraints.txt) or re-check agents/faust_fixes.py and "
              "agents/faust_speedups.py against the new ones and update agents/patches.py")


def source_fingerprint(target: str) -> str:
    """sha256 prefix of an upstream function's source, read from the installed file (not from the
    live object, which may already be patched); for "module:", of the module file itself."""
    module, _, qualname = target.partition(":")
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise PatchVersionError(f"{module} is not installed")
    path = Path(spec.origin)
    if not qualname:
        if path.name.endswith(".so"):  # a compiled module: fingerprint its Cython source beside it
            pyx = path.with_name(path.name.split(".")[0] + ".pyx")
            path = pyx if pyx.exists() else path
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    text = path.read_text()
    node: Any = ast.parse(text)
    for part in qualname.split("."):
        node = next((child for child in node.body
                     if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                     and child.name == part), None)
        if node is None:
            raise PatchVersionError(f"{target}: not found in {path}")
    segment = ast.get_source_segment(text, node) or ""
    return hashlib.sha256(segment.encode()).hexdigest()[:16]


def fixes_off(settings: Settings) -> set[str]:
    names = {name.strip() for name in settings.faust_fixes_off.split(",") if name.strip()}
    unknown = names - set(FIXES)
    if unknown:
        raise ValueError(f"HERA_FAUST_FIXES_OFF: unknown fix {', '.join(sorted(unknown))} "
                         f"(known: {', '.join(FIXES)})")
    return names


def install(app: Any, settings: Settings) -> dict[str, Any]:
    """Apply the patches we keep, after the version gate; returns what was applied (for the log)."""
    from agents import faust_fixes, faust_speedups

    check_versions()
    off = fixes_off(settings)
    faust_fixes.install(disabled=off)
    speedups = settings.faust_speedups and faust_speedups.install(app)
    return {"fixes": [name for name in FIXES if name not in off], "speedups": bool(speedups)}
