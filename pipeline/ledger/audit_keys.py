"""The audit chain's HMAC key, kept outside the database, and signed checkpoints of chain heads.

Key, first found of: ``HERA_AUDIT_KEY`` (the text, at least 32 bytes), ``HERA_AUDIT_KEY_FILE``
(a file holding it), ``<HERA_HOME>/audit.key`` (generated on first use: 32 random bytes as hex,
mode 0600, written atomically so two processes starting together agree on one key). Whoever
holds the key can forge the chain: keep it away from the database's superusers (SECURITY.md).

A checkpoint is the chain heads (per organisation: seq and hash) at a moment, signed with the key
and written to a file outside the database. ``verify_audit(..., checkpoint=…)`` then catches what
the chain alone cannot: the newest rows deleted together with their head.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.config import AUDIT_KEY_BYTES_MIN, Settings
from pipeline.domain.errors import HeraError
from pipeline.keyfiles import secret_file

KEY_FILE_NAME = "audit.key"
CHECKPOINT_VERSION = 1


class AuditKeyError(ValueError, HeraError):
    """The audit key is missing, too short or unreadable, or a checkpoint's signature is wrong."""


def load_key(settings: Settings | None = None) -> bytes:
    """The HMAC key of the audit chain (see the module docstring for where it comes from)."""
    settings = settings or Settings()
    if settings.audit_key is not None:
        key = settings.audit_key.get_secret_value().encode()
    elif settings.audit_key_file is not None:
        key = Path(settings.audit_key_file).read_bytes().strip()
    else:
        key = secret_file(Path(settings.home) / KEY_FILE_NAME).encode()
    if len(key) < AUDIT_KEY_BYTES_MIN:
        raise AuditKeyError(f"the audit key must be at least {AUDIT_KEY_BYTES_MIN} bytes")
    return key


def link_hmac(key: bytes, prev_hash: str, content: bytes) -> str:
    return hmac.new(key, prev_hash.encode("ascii") + content, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Checkpoint:
    created_at: str
    heads: dict[str, tuple[int, str]]    # organisation -> (seq, hash)


def _signed_bytes(created_at: str, heads: dict[str, tuple[int, str]]) -> bytes:
    body = {"version": CHECKPOINT_VERSION, "created_at": created_at,
            "heads": {org: [seq, digest] for org, (seq, digest) in sorted(heads.items())}}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def write_checkpoint(path: Path, heads: dict[str, tuple[int, str]], key: bytes, *,
                     now: datetime | None = None) -> dict[str, Any]:
    """Sign ``heads`` and write them to ``path`` (mode 0600); return what was written."""
    created_at = (now or datetime.now(UTC)).isoformat()
    signature = hmac.new(key, _signed_bytes(created_at, heads), hashlib.sha256).hexdigest()
    doc = {"version": CHECKPOINT_VERSION, "created_at": created_at,
           "heads": {org: {"seq": seq, "hash": digest} for org, (seq, digest) in sorted(heads.items())},
           "signature": signature}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(doc, handle, indent=1)
    return doc


def read_checkpoint(path: Path, key: bytes) -> Checkpoint:
    """The checkpoint in ``path``; ``AuditKeyError`` unless its signature is the key's."""
    try:
        doc = json.loads(Path(path).read_text())
        heads = {str(org): (int(h["seq"]), str(h["hash"])) for org, h in doc["heads"].items()}
        created_at, signature = str(doc["created_at"]), str(doc["signature"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AuditKeyError(f"{path}: not a checkpoint ({type(exc).__name__})") from None
    expected = hmac.new(key, _signed_bytes(created_at, heads), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise AuditKeyError(f"{path}: the signature does not match the audit key (edited, or another key)")
    return Checkpoint(created_at, heads)
