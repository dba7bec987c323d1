"""The audit log's keyed hash chain: a pure part (canonical form, link hashing, chain checking) and
``verify_audit``, which re-walks the chains stored in PostgreSQL.

Per organisation, rows are numbered ``seq = 1, 2, 3 …`` and

    hash = HMAC-SHA256(key, prev_hash || canonical(row))     prev_hash of seq 1 = GENESIS_HASH

where ``canonical`` is compact, key-sorted JSON of the row's content (organisation, seq,
record_key, occurred_at in UTC ISO 8601 with microseconds, actor, action, subject, payload) and
the key lives outside the database (``audit_keys``): a superuser who edits rows cannot re-compute
the links. Editing any field, deleting a row, or reordering rows breaks a link; deleting the newest
rows is caught by the head kept in ``audit_heads`` and, should the head be rewound too, by a
signed checkpoint kept outside the database (``audit_keys.write_checkpoint``).

An ``entries.posted`` row lists each entry it records with a digest of its content
(``entry_digest``: the header and every line's account, side, amount and currency), so the chain
covers every line, and ``hera verify`` re-computes the digests from the ledger.

Rows written before the chain was keyed (migration 0010 records where, per organisation, in
``audit_chain_epochs``) keep their plain ``sha256(prev_hash || canonical(row))`` links.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from pipeline.domain.canonical import canonical_bytes, orjson_exact

GENESIS_HASH = "0" * 64
#: The action of the row that records a posting batch's entries of one organisation; its payload is
#: {"entries": [[entry_id, event_id, smart_code, currency, total, line_count, entry_digest], ...]}.
ENTRIES_POSTED = "entries.posted"
_PLAIN_SCALARS = (str, int, bool)
# What json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str) does,
# without building an encoder per call.
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
# The string escaping that encoder uses (ensure_ascii=False): the C implementation when available.
_encode_str = json.encoder.encode_basestring
BREAKS_REPORTED_MAX = 20
ACTION_LENGTH_MAX = 100


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One thing that happened, to be appended to an organisation's chain."""

    organization_id: str
    action: str                      # e.g. "entry.posted", "event.rejected", "review.approved"
    actor: str                       # who or what did it ("hera-stream", a reviewer's id)
    occurred_at: datetime            # timezone-aware
    subject: str | None = None       # e.g. the event_id
    payload: Mapping[str, Any] = field(default_factory=dict)
    record_key: str | None = None    # idempotency key: a redelivered record with the same key is skipped


@dataclass(frozen=True, slots=True)
class ChainedRow:
    organization_id: str
    seq: int
    record_key: str | None
    occurred_at: datetime
    actor: str
    action: str
    subject: str | None
    payload: Mapping[str, Any]
    prev_hash: str
    hash: str


def normalise_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload as it will read back from JSONB, so hashing before and after storage agrees.

    Decimals, datetimes and other non-JSON values become strings; so do floats that JSONB would
    not give back identically (exponent notation, NaN, infinities).
    """
    if _is_flat_plain(payload) or (type(payload) is dict and orjson_exact(payload)):
        # only str keys, lists, dicts and str/int/bool/None (entries.posted): JSONB gives it back unchanged
        return dict(payload)
    return _plain(json.loads(json.dumps(payload, default=str, ensure_ascii=False)))


def _is_flat_plain(payload: Mapping[str, Any]) -> bool:
    """Only string keys and str/int/bool/None values: a JSON round trip is the identity."""
    for key, value in payload.items():
        if type(key) is not str or not (value is None or type(value) in _PLAIN_SCALARS):
            return False
    return True


def _plain(value: Any) -> Any:
    if isinstance(value, float) and (not math.isfinite(value) or "e" in repr(value)):
        return repr(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def canonical(organization_id: str, seq: int, record_key: str | None, occurred_at: datetime, actor: str,
              action: str, subject: str | None, payload: Mapping[str, Any]) -> bytes:
    if (type(seq) is int and type(actor) is str and type(action) is str and _str_or_none(record_key)
            and _str_or_none(subject) and _is_flat_plain(payload)):
        return _canonical_flat(str(organization_id).lower(), seq, record_key, _iso_utc(occurred_at), actor, action,
                               subject, payload)
    return _canonical_json(organization_id, seq, record_key, occurred_at, actor, action, subject, payload)


def _str_or_none(value: object) -> bool:
    return value is None or type(value) is str


def _json_scalar(value: str | int | bool | None) -> str:
    """One plain scalar exactly as the canonical JSON encoder writes it."""
    if type(value) is str:
        return _encode_str(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    return int.__repr__(value)  # type: ignore[arg-type]


def _iso_utc(occurred_at: datetime) -> str:
    return occurred_at.astimezone(UTC).isoformat(timespec="microseconds")


def _canonical_flat(org_lower: str, seq: int, record_key: str | None, occurred_iso: str, actor: str,
                    action: str, subject: str | None, payload: Mapping[str, Any]) -> bytes:
    """``_canonical_json`` for a flat plain payload, written out directly (same bytes, in less time): the
    keys in sorted order, compact separators, strings escaped by the json module's own encoder.
    tests/integration/test_ledger_audit.py checks the two agree."""
    items = ",".join(f"{_encode_str(k)}:{_json_scalar(payload[k])}" for k in sorted(payload))
    return (f'{{"action":{_encode_str(action)},"actor":{_encode_str(actor)},'
            f'"occurred_at":{_encode_str(occurred_iso)},'
            f'"organization_id":{_encode_str(org_lower)},"payload":{{{items}}},'
            f'"record_key":{_json_scalar(record_key)},"seq":{int.__repr__(seq)},'
            f'"subject":{_json_scalar(subject)}}}').encode()


def _canonical_json(organization_id: str, seq: int, record_key: str | None, occurred_at: datetime, actor: str,
                    action: str, subject: str | None, payload: Mapping[str, Any]) -> bytes:
    body = {
        "organization_id": str(organization_id).lower(), "seq": seq, "record_key": record_key,
        "occurred_at": occurred_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": actor, "action": action, "subject": subject, "payload": payload,
    }
    if orjson_exact(body):  # byte for byte what the encoder below writes, several times faster
        return canonical_bytes(body, exact=True)
    return _CANONICAL_JSON.encode(body).encode("utf-8")


def link_hash(prev_hash: str, content: bytes, key: bytes | None = None) -> str:
    """The link: HMAC-SHA256 with ``key``; plain SHA-256 for a row from before the chain was keyed."""
    if key is None:
        return hashlib.sha256(prev_hash.encode("ascii") + content).hexdigest()
    return hmac.new(key, prev_hash.encode("ascii") + content, hashlib.sha256).hexdigest()


def entry_digest(entry_id: str, event_id: str, smart_code: str, currency: str, total: Any, transaction_date: str,
                 lines: Iterable[tuple[str, str, Any, str]]) -> str:
    """sha256 (hex) of an entry's header and every line (account code, side, amount, currency), in
    line order; amounts as plain decimals without trailing zeros, so ``12.50`` from Python and
    ``12.5000`` from PostgreSQL agree."""
    # json.dumps(body, separators=(",", ":"), ensure_ascii=False) of
    # [id, event_id, smart_code, currency, total, date, [[account, side, amount, currency], ...]],
    # written out with the same string encoder (a test holds the two to the same bytes)
    enc = _encode_str
    rows = ",".join(f"[{enc(str(a))},{enc(str(sd))},{enc(_decimal_text(m))},{enc(str(c))}]" for a, sd, m, c in lines)
    text = (f"[{enc(str(entry_id).lower())},{enc(event_id)},{enc(smart_code)},{enc(currency)},"
            f"{enc(_decimal_text(total))},{enc(transaction_date)},[{rows}]]")
    return hashlib.sha256(text.encode()).hexdigest()


def _decimal_text(value: Any) -> str:
    """A decimal as plain text without trailing zeros: 12.50 and 12.5000 are both ``12.5``."""
    text = value if isinstance(value, str) else str(value)
    if "E" in text or "e" in text:
        text = format(Decimal(text), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0", "0") else text


def chain(records: Sequence[AuditRecord], head_seq: int, head_hash: str, key: bytes | None = None
          ) -> list[ChainedRow]:
    """Chain ``records`` (all of one organisation) after the head ``(head_seq, head_hash)``, keyed by
    ``key`` (None: the unkeyed form, for tests of rows from before the key)."""
    rows: list[ChainedRow] = []
    prev_hash, seq = head_hash, head_seq
    for rec in records:
        seq += 1
        payload = normalise_payload(rec.payload)
        occurred_at = rec.occurred_at if rec.occurred_at.tzinfo else rec.occurred_at.replace(tzinfo=UTC)
        occurred_at = occurred_at.astimezone(UTC)
        org = str(rec.organization_id).lower()
        digest = link_hash(prev_hash, canonical(org, seq, rec.record_key, occurred_at, rec.actor, rec.action,
                                                rec.subject, payload), key)
        rows.append(ChainedRow(org, seq, rec.record_key, occurred_at, rec.actor, rec.action, rec.subject, payload,
                               prev_hash, digest))
        prev_hash = digest
    return rows


def check_chain(rows: Iterable[Mapping[str, Any]], head: tuple[int, str] | None = None, key: bytes | None = None,
                keyed_from_seq: int = 1) -> list[dict[str, Any]]:
    """Breaks in one organisation's chain, rows given in ``seq`` order (empty list: intact).

    Rows from ``keyed_from_seq`` on are checked with ``key`` (all rows unkeyed when it is None).
    Each break is ``{"organization_id", "seq", "kind"}`` with kind ``seq_gap`` (a row missing or
    renumbered), ``link`` (prev_hash is not the previous row's hash: deleted or reordered rows),
    ``hash`` (content edited, or links re-computed without the key), or ``head`` (the newest rows
    were removed).
    """
    breaks: list[dict[str, Any]] = []
    prev_hash, expected_seq, org = GENESIS_HASH, 1, None
    for row in rows:
        org = str(row["organization_id"])
        seq = row["seq"]
        if seq != expected_seq:
            breaks.append({"organization_id": org, "seq": seq, "kind": "seq_gap"})
        if row["prev_hash"] != prev_hash:
            breaks.append({"organization_id": org, "seq": seq, "kind": "link"})
        payload = row["payload"]
        if isinstance(payload, str):
            payload = json.loads(payload)
        content = canonical(org, seq, row["record_key"], row["occurred_at"], row["actor"], row["action"],
                            row["subject"], payload)
        if link_hash(row["prev_hash"], content, key if seq >= keyed_from_seq else None) != row["hash"]:
            breaks.append({"organization_id": org, "seq": seq, "kind": "hash"})
        prev_hash, expected_seq = row["hash"], seq + 1
    if head is not None and (head[0] != expected_seq - 1 or head[1] != prev_hash):
        breaks.append({"organization_id": org, "seq": head[0], "kind": "head"})
    return breaks


async def verify_audit(conn: asyncpg.Connection, org_id: str | None = None, *, key: bytes | None = None,
                       checkpoint: Any = None) -> dict[str, Any]:
    """Re-walk the stored chains (all organisations, or one) and report breaks as JSON-able counts.

    ``key``: the chain's HMAC key (default: ``audit_keys.load_key()``). ``checkpoint``: an
    ``audit_keys.Checkpoint`` read from outside the database; each head it holds must still be in
    the chain (kind ``checkpoint`` otherwise: rows deleted together with their head).
    Needs a connection that sees every row of the organisations checked: the admin (migrating)
    user, or one acting for ``org_id`` under row-level security.
    """
    from pipeline.ledger.audit_keys import load_key

    key = key if key is not None else load_key()
    orgs_sql = "SELECT organization_id FROM audit_heads UNION SELECT DISTINCT organization_id FROM audit_log"
    if org_id is None:
        orgs = [r["organization_id"] for r in await conn.fetch(orgs_sql)]
        if checkpoint is not None:
            orgs = sorted({str(o) for o in orgs} | set(checkpoint.heads))
    else:
        orgs = [org_id]
    epochs = {str(r["organization_id"]): r["keyed_from_seq"]
              for r in await conn.fetch("SELECT organization_id, keyed_from_seq FROM audit_chain_epochs")}
    rows_total, breaks = 0, []
    for org in sorted(str(o) for o in orgs):
        rows = await conn.fetch(
            "SELECT organization_id, seq, record_key, occurred_at, actor, action, subject, payload::text AS payload,"
            " prev_hash, hash FROM audit_log WHERE organization_id = $1 ORDER BY seq", org)
        head_row = await conn.fetchrow("SELECT seq, hash FROM audit_heads WHERE organization_id = $1", org)
        head = (head_row["seq"], head_row["hash"]) if head_row else ((0, GENESIS_HASH) if rows else None)
        rows_total += len(rows)
        breaks.extend(check_chain(rows, head, key, epochs.get(org, 1)))
        if checkpoint is not None and org in checkpoint.heads:
            seq, digest = checkpoint.heads[org]
            if seq > 0 and not any(r["seq"] == seq and r["hash"] == digest for r in rows):
                breaks.append({"organization_id": org, "seq": seq, "kind": "checkpoint"})
    result = {"ok": not breaks, "organizations": len(orgs), "rows": rows_total, "breaks": len(breaks),
              "break_details": breaks[:BREAKS_REPORTED_MAX]}
    if checkpoint is not None:
        result["checkpoint"] = {"created_at": checkpoint.created_at, "organizations": len(checkpoint.heads)}
    return result


async def chain_heads(conn: asyncpg.Connection) -> dict[str, tuple[int, str]]:
    """Every organisation's chain head (admin connection), for a checkpoint."""
    return {str(r["organization_id"]): (r["seq"], r["hash"])
            for r in await conn.fetch("SELECT organization_id, seq, hash FROM audit_heads ORDER BY organization_id")}


def entries_posted_payload(entries: Iterable[tuple[Any, str]]) -> dict[str, Any]:
    """The payload of an ``entries.posted`` row: per (JournalEntry, entry_id), what identifies it and
    ``entry_digest`` of its header and lines."""
    from pipeline.ledger.posting import business_date

    return {"entries": [[entry_id, entry.event_id, entry.smart_code, entry.currency, str(entry.total),
                         len(entry.lines),
                         entry_digest(entry_id, entry.event_id, entry.smart_code, entry.currency, entry.total,
                                      business_date(entry.occurred_at).isoformat(),
                                      ((line.account, line.side, line.amount, line.currency) for line in entry.lines))]
                        for entry, entry_id in entries]}
