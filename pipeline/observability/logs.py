"""Logging for every process of the product, Faust's own loggers included (root logging).

``HERA_LOG_FORMAT=text`` (default) prints one human line per record; ``json`` prints one JSON
object per line: ``ts``, ``level``, ``logger``, ``msg``, and ``org``, ``event_id``, ``stage`` when
known (passed as ``extra=`` or bound for a block with ``log_context``), ``exc`` for a traceback.

Nothing secret or card-like reaches a log line, in either format: ``MaskingFilter`` sits on the
handler, so it sees every record (ours, Faust's, aiokafka's, asyncpg's) and replaces
* card numbers (13-19 digits, spaces or dashes allowed, passing the Luhn check) by ``[PAN]``,
* the password of any URL (``scheme://user:***@host``),
* ``password=…``, ``secret=…``, ``token=…``, ``key=…`` style values,
* the exact values of the configured secrets (database URL password, SASL password, audit key).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from pipeline.domain.pan import luhn_valid

CONTEXT_FIELDS = ("org", "event_id", "stage")
TEXT_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"
QUIET_LOGGERS = {"aiokafka": logging.WARNING}

_context: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("hera_log_context", default={})  # noqa: B039
_PAN = re.compile(r"(?<![0-9])(?:[0-9][ -]?){12,18}[0-9](?![0-9])")
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s]+(?=@)")
_KEY_VALUE = re.compile(r"(?i)(?P<key>password|passwd|secret|token|api[_-]?key|audit[_-]?key)(?P<sep>[\"']?\s*[:=]\s*[\"']?)"
                        r"[^\s\"',;&]+")


def mask(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with card numbers, URL passwords, key=value secrets and the given secret values masked."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    text = _URL_PASSWORD.sub(lambda m: m.group("head") + "***", text)
    text = _KEY_VALUE.sub(lambda m: m.group("key") + m.group("sep") + "***", text)

    def pan(m: re.Match[str]) -> str:
        digits = re.sub(r"[ -]", "", m.group(0))
        return "[PAN]" if 13 <= len(digits) <= 19 and luhn_valid(digits) else m.group(0)

    return _PAN.sub(pan, text)


class MaskingFilter(logging.Filter):
    """Renders each record's message once, masked (``msg`` becomes the masked text, no ``args``)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        with contextlib.suppress(Exception):  # a record that cannot be rendered is left to the formatter
            record.msg = mask(record.getMessage(), self.secrets)
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text, self.secrets)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        bound = _context.get()
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None) or bound.get(name)
            if value is not None:
                out[name] = str(value)
        if record.exc_text or record.exc_info:
            out["exc"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return json.dumps(out, ensure_ascii=False, default=str)


@contextlib.contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Bind ``org``, ``event_id`` or ``stage`` to every record logged inside the block (this task only)."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: str | None) -> None:
    """Bind ``org``, ``event_id`` or ``stage`` for the rest of the current task (an agent binds its
    stage once: each Faust agent runs in its own task, so the binding stays with it)."""
    _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})


def configure(log_format: str = "text", level: str = "info", secrets: Iterable[str] = (),
              stream: Any = None) -> logging.Handler:
    """Replace the root logger's handlers with one masked handler in ``log_format``; returns it."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(MaskingFilter(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if level.lower() != "warn" else "WARNING")
    for name, quiet in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(quiet)
    return handler


def settings_secrets(settings: Any) -> list[str]:
    """The secret values a Settings object holds (their plain text, to be masked wherever seen):
    the database and cache URLs' passwords, the SASL and TLS key passwords, the audit key."""
    found = []
    for name in ("database_url", "cache_url", "kafka_sasl_password", "kafka_ssl_key_password", "audit_key"):
        value = getattr(settings, name, None)
        if value is None:
            continue
        text = value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
        if name in ("database_url", "cache_url"):
            creds = text.split("://", 1)[-1].rsplit("@", 1)[0] if "@" in text else ""
            text = creds.split(":", 1)[1] if ":" in creds else ""
        found.append(text)
    return [s for s in found if s]
