"""Secrets kept in files under ``HERA_HOME`` (the audit chain's key, the decision-signing key, the
embedded PostgreSQL passwords): generated on first use as 32 random bytes in hex, mode 0600.

Creation is atomic and never overwrites: a complete temporary file is hard-linked into place, so
when two processes start together one of them makes the secret and both read the same one.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SECRET_BYTES = 32


def secret_file(path: Path) -> str:
    """The secret kept in ``path``, generated on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_hex(SECRET_BYTES).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # fails if another process made it first: then theirs is the secret
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()
