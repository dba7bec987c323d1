"""Signed review decisions: the web app signs each decision it sends, the worker posts only those.

A decision on ``hera.review.decisions`` carries ``signature``: HMAC-SHA256, keyed with the key
that the web app and the worker share, over the canonical JSON of every other field (keys sorted,
compact, UTF-8). Whoever can write to the topic but does not hold the key cannot approve or
correct anything: the worker dead-letters an unsigned decision ``DECISION_UNSIGNED`` and one whose
signature does not match ``DECISION_FORGED`` (see ``pipeline.review.parse_decision``).

The key is ``HERA_DECISION_KEY`` when set (any text, at least ``KEY_CHARS_MIN`` long); otherwise
a random key generated once under the home directory (``<home>/decision.key``, mode 0600) that
every process using the same home shares. ``sign``/``verify`` are pure; only
``decision_key`` touches the file system.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

from pipeline.domain.outcomes import Reason, Rejected
from pipeline.keyfiles import secret_file

SIGNATURE_FIELD = "signature"
SIGNATURE_SCHEME = "hmac-sha256"
KEY_FILE = "decision.key"
KEY_CHARS_MIN = 32
KEY_BYTES_GENERATED = 32


def canonical(decision: dict[str, Any]) -> bytes:
    """The signed bytes: every field but the signature, as compact key-sorted JSON."""
    body = {k: v for k, v in decision.items() if k != SIGNATURE_FIELD}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign(decision: dict[str, Any], key: bytes) -> dict[str, Any]:
    """The decision with its ``signature`` field (``hmac-sha256=<hex>``)."""
    mac = hmac.new(key, canonical(decision), hashlib.sha256).hexdigest()
    return {**decision, SIGNATURE_FIELD: f"{SIGNATURE_SCHEME}={mac}"}


def verify(decision: dict[str, Any], key: bytes) -> Rejected | None:
    """None when ``decision`` carries a valid signature under ``key``; else why not."""
    given = decision.get(SIGNATURE_FIELD)
    if given is None or given == "":
        return Rejected(Reason.DECISION_UNSIGNED, "the decision carries no signature")
    if not isinstance(given, str) or not given.startswith(f"{SIGNATURE_SCHEME}="):
        return Rejected(Reason.DECISION_FORGED, f"the signature is not {SIGNATURE_SCHEME}")
    expected = sign(decision, key)[SIGNATURE_FIELD]
    if not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
        return Rejected(Reason.DECISION_FORGED, "the signature does not match the decision")
    return None


def decision_key(settings: Any) -> bytes:
    """The shared key: ``settings.decision_key`` when set, else ``<home>/decision.key`` (made once)."""
    configured = getattr(settings, "decision_key", None)
    if configured is not None:
        text = configured.get_secret_value()
        if len(text) < KEY_CHARS_MIN:
            raise ValueError(f"HERA_DECISION_KEY must be at least {KEY_CHARS_MIN} characters")
        return text.encode("utf-8")
    return _key_file(Path(settings.home) / KEY_FILE)


def _key_file(path: Path) -> bytes:
    """Read the key file, creating it (``pipeline.keyfiles``) if absent."""
    secret_file(path)
    return _read(path)


def _read(path: Path) -> bytes:
    key = path.read_bytes().strip()
    if len(key) < KEY_CHARS_MIN:
        raise ValueError(f"{path} holds no usable key (fewer than {KEY_CHARS_MIN} characters)")
    return key
