"""Keys of data subjects in PostgreSQL (``privacy_subject_keys``, migration 0011), sealing of personal
text with them, revealing it for display, and erasure (crypto-shredding): ``pipeline.domain.privacy``
is the pure part and says how text is sealed.

A subject is a counterparty name within an organisation. What is sealed with its key:

* an entry's ``counterparty``, ``description`` and line descriptions (``seal_batch``, called by
  ``LedgerStore.post_batch`` in the posting transaction);
* a review item's event and suggested entry: the same fields (``seal_payload``, called by
  ``LedgerStore.add_reviews``).

Erasing the subject makes all of it unreadable, while amounts, accounts, smart codes and the audit
chain (which digests none of that text) stay as they were. Reads reveal sealed text with the key
(``Revealer``); once the key is gone they show ``ERASED``.

Keys are fetched (and missing ones created) in one statement per batch, inside the caller's
transaction acting for the batch's organisations: row-level security admits only their keys.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import asyncpg

from pipeline.domain.entries import JournalEntry
from pipeline.domain.privacy import Sealer, sealed_subject, subject_id, unseal
from pipeline.ledger.tenancy import org_uuid, tenant_transaction

ERASED_ACTION = "privacy.subject_erased"
ERASED = "[erased]"          # what a read shows for text whose subject was erased
KEY_BYTES = 32
NONCE_BYTES = 16
# review payload: (part, field) sealed, and the parts whose lines' descriptions are sealed
PAYLOAD_FIELDS = (("event", "counterparty"), ("event", "description"), ("entry", "counterparty"),
                  ("entry", "description"), ("classification", "explanation"))
PAYLOAD_PARTS = ("event", "entry", "classification")
PAYLOAD_LINE_PARTS = ("event", "entry")
# the classifier's explanation quotes the event's words (evidence, unknown words): sealed as one JSON text

Pair = tuple[uuid.UUID, str]   # (organisation, subject id)

# One statement: create the missing keys and read every key of the batch. The INSERT's RETURNING gives
# the keys created now, the SELECT (the statement's snapshot, taken before the insert) the older ones.
_KEYS = """
WITH w AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::bytea[]) AS w(o, s, k)),
ins AS (INSERT INTO privacy_subject_keys (organization_id, subject_id, key) SELECT o, s, k FROM w
        ON CONFLICT DO NOTHING RETURNING organization_id, subject_id, key)
SELECT organization_id, subject_id, key FROM ins
UNION ALL
SELECT p.organization_id, p.subject_id, p.key FROM privacy_subject_keys p JOIN w ON p.organization_id = w.o
   AND p.subject_id = w.s
"""
_READ_KEYS = """
SELECT p.organization_id, p.subject_id, p.key FROM privacy_subject_keys p
  JOIN unnest($1::uuid[], $2::text[]) AS w(o, s) ON p.organization_id = w.o AND p.subject_id = w.s
"""


def pepper_from(audit_key: bytes) -> bytes:
    """The key that turns names into subject ids, derived from the audit key (domain-separated)."""
    return hmac.new(audit_key, b"hera-privacy-subject-id", hashlib.sha256).digest()


async def keys_for(conn: asyncpg.Connection, pairs: Iterable[Pair], *, create: bool,
                   timeout: float | None = None) -> dict[Pair, bytes]:
    """The keys of ``pairs`` (created when missing and ``create``): one statement; call inside a
    transaction acting for their organisations."""
    wanted = sorted(set(pairs))
    if not wanted:
        return {}
    orgs, subjects = [p[0] for p in wanted], [p[1] for p in wanted]
    if create:
        rows = await conn.fetch(_KEYS, orgs, subjects, [os.urandom(KEY_BYTES) for _ in wanted], timeout=timeout)
    else:
        rows = await conn.fetch(_READ_KEYS, orgs, subjects, timeout=timeout)
    keys = {(r["organization_id"], r["subject_id"]): bytes(r["key"]) for r in rows}
    if create and len(keys) < len(wanted):
        # another transaction created some of them after this statement's snapshot: read them now
        late = [p for p in wanted if p not in keys]
        rows = await conn.fetch(_READ_KEYS, [p[0] for p in late], [p[1] for p in late], timeout=timeout)
        keys.update({(r["organization_id"], r["subject_id"]): bytes(r["key"]) for r in rows})
    return keys


async def subject_keys(conn: asyncpg.Connection, org: str, subjects: Iterable[str], *, create: bool
                       ) -> dict[str, bytes]:
    """The keys of ``subjects`` in ``org`` (created when missing and ``create``); call inside a
    transaction acting for ``org``."""
    o = uuid.UUID(str(org))
    return {s: k for (_, s), k in (await keys_for(conn, [(o, s) for s in subjects], create=create)).items()}


def _subject_of(pepper: bytes, org: object, name: object) -> Pair | None:
    o = org_uuid(org)
    if o is None or not isinstance(name, str) or not name or sealed_subject(name) is not None:
        return None
    return o, subject_id(pepper, str(o), name)


class _Seal:
    """Seals texts of one batch: a ``Sealer`` per subject, nonces drawn in one system call, and one
    token per (subject, text) in a batch (a repeated counterparty is sealed once: equal tokens say
    no more than the subject id they carry already)."""

    def __init__(self, keys: Mapping[Pair, bytes], texts: int) -> None:
        self._keys = keys
        self._sealers: dict[Pair, Sealer] = {}
        self._done: dict[tuple[Pair, str], str] = {}
        self._nonces = os.urandom(NONCE_BYTES * max(texts, 1))
        self._used = 0

    def __call__(self, pair: Pair, text: str | None) -> str | None:
        if text is None:
            return None
        token = self._done.get((pair, text))
        if token is not None:
            return token
        sealer = self._sealers.get(pair)
        if sealer is None:
            sealer = self._sealers[pair] = Sealer(self._keys[pair], pair[1])
        start = self._used * NONCE_BYTES
        nonce = self._nonces[start:start + NONCE_BYTES]
        if len(nonce) < NONCE_BYTES:
            nonce = os.urandom(NONCE_BYTES)
        self._used += 1
        token = self._done[(pair, text)] = sealer.seal(text, nonce=nonce)
        return token


def sealed_entry(entry: JournalEntry, pair: Pair | None, seal: Any) -> JournalEntry:
    """``entry`` with its counterparty, description and line descriptions sealed for ``pair``
    (unchanged without one)."""
    if pair is None:
        return entry
    return dataclasses.replace(entry, counterparty=seal(pair, entry.counterparty), description=seal(pair, entry.description),
                               lines=tuple(line if line.description is None
                                           else dataclasses.replace(line, description=seal(pair, line.description))
                                           for line in entry.lines))


async def seal_batch(conn: asyncpg.Connection, entries: Sequence[JournalEntry], pepper: bytes, *,
                     timeout: float | None = None) -> list[JournalEntry]:
    """Seal the personal text of ``entries`` inside the caller's transaction (acting for their
    organisations): one statement for every key of the batch, missing keys created by it."""
    pairs = [_subject_of(pepper, e.organization_id, e.counterparty) for e in entries]
    if not any(pairs):
        return list(entries)
    keys = await keys_for(conn, [p for p in pairs if p is not None], create=True, timeout=timeout)
    seal = _Seal(keys, sum(2 + len(e.lines) for e, p in zip(entries, pairs, strict=True) if p))
    return [sealed_entry(e, p, seal) for e, p in zip(entries, pairs, strict=True)]


async def seal_entries(conn: asyncpg.Connection, entries: Sequence[JournalEntry], pepper: bytes) -> list[JournalEntry]:
    """``seal_batch`` in transactions of its own, one per organisation (an owner's connection)."""
    by_org: dict[str, list[int]] = {}
    for i, entry in enumerate(entries):
        by_org.setdefault(entry.organization_id, []).append(i)
    out = list(entries)
    for org, idx in by_org.items():
        async with tenant_transaction(conn, [org]):
            for i, sealed in zip(idx, await seal_batch(conn, [entries[i] for i in idx], pepper), strict=True):
                out[i] = sealed
    return out


# ---------------------------------------------------------------- review payloads

def payload_subject(pepper: bytes, org: object, payload: Mapping[str, Any]) -> Pair | None:
    """The subject of a review payload: its event's counterparty (None: nothing to seal)."""
    event = payload.get("event")
    return _subject_of(pepper, org, event.get("counterparty")) if isinstance(event, Mapping) else None


def _map_payload(payload: Mapping[str, Any], fn: Any) -> dict[str, Any]:
    """``payload`` with ``fn(text)`` applied to each personal text field (copies what it changes)."""
    out = dict(payload)
    for part in PAYLOAD_PARTS:
        body = out.get(part)
        if not isinstance(body, Mapping):
            continue
        body = out[part] = dict(body)
        for p, name in PAYLOAD_FIELDS:
            if p == part and isinstance(body.get(name), str):
                body[name] = fn(body[name])
        if part in PAYLOAD_LINE_PARTS and isinstance(body.get("lines"), list):
            body["lines"] = [{**ln, "description": fn(ln["description"])}
                             if isinstance(ln, Mapping) and isinstance(ln.get("description"), str) else ln
                             for ln in body["lines"]]
    return out


async def seal_payloads(conn: asyncpg.Connection, items: Sequence[tuple[object, Mapping[str, Any]]], pepper: bytes,
                        *, timeout: float | None = None) -> list[dict[str, Any]]:
    """Review payloads ``(org, payload)`` with their personal text sealed, inside the caller's
    transaction (one statement for the keys)."""
    pairs = [payload_subject(pepper, org, payload) for org, payload in items]
    keys = await keys_for(conn, [p for p in pairs if p is not None], create=True, timeout=timeout)
    items = [(org, _explanation_as_text(payload) if pair is not None else payload)
             for (org, payload), pair in zip(items, pairs, strict=True)]
    seal = _Seal(keys, 8 * sum(1 for p in pairs if p))
    return [dict(payload) if pair is None else _map_payload(payload, lambda t, pair=pair: seal(pair, t))
            for (_, payload), pair in zip(items, pairs, strict=True)]


def _explanation_as_text(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    cls = payload.get("classification")
    if isinstance(cls, Mapping) and isinstance(cls.get("explanation"), dict):
        return {**payload, "classification": {**cls, "explanation": json.dumps(cls["explanation"], default=str)}}
    return payload


# ---------------------------------------------------------------- reading

class Revealer:
    """Turns sealed values back into text for display: the text, or ``ERASED`` when the subject's
    key is gone. Built by ``revealer`` with every key a set of rows needs, in one query."""

    def __init__(self, keys: Mapping[Pair, bytes]) -> None:
        self._keys = keys

    def text(self, org: object, value: Any) -> Any:
        subject = sealed_subject(value)
        if subject is None:
            return value
        o = org_uuid(org)
        key = self._keys.get((o, subject)) if o is not None else None
        plain = unseal(key, value) if key is not None else None
        return ERASED if plain is None else plain

    def erased(self, org: object, value: Any) -> bool:
        return sealed_subject(value) is not None and self.text(org, value) == ERASED

    def payload(self, org: object, payload: Mapping[str, Any]) -> dict[str, Any]:
        out = _map_payload(payload, lambda t: self.text(org, t))
        cls = out.get("classification")
        if isinstance(cls, Mapping) and isinstance(cls.get("explanation"), str):   # sealed as JSON text
            try:
                explanation = json.loads(cls["explanation"])
            except ValueError:   # erased
                explanation = None
            out["classification"] = {**cls, "explanation": explanation if isinstance(explanation, dict) else None}
        return out


def sealed_pairs(items: Iterable[tuple[object, Any]]) -> set[Pair]:
    """The (organisation, subject) of every sealed value among ``(org, value)``."""
    out = set()
    for org, value in items:
        subject = sealed_subject(value)
        o = org_uuid(org) if subject is not None else None
        if o is not None and subject is not None:
            out.add((o, subject))
    return out


def payload_values(payload: Mapping[str, Any]) -> list[str]:
    """The personal text values of a review payload (sealed or not)."""
    found: list[str] = []

    def keep(text: str) -> str:
        found.append(text)
        return text

    _map_payload(payload, keep)
    return found


async def revealer(conn: asyncpg.Connection, items: Iterable[tuple[object, Any]], *,
                   timeout: float | None = None) -> Revealer:
    """A ``Revealer`` for the sealed values among ``(org, value)``: their keys in one query (as the
    connection's role sees them: acting for the organisations, or an owner)."""
    pairs = sealed_pairs(items)
    return Revealer(await keys_for(conn, pairs, create=False, timeout=timeout) if pairs else {})


async def reveal_rows(conn: asyncpg.Connection, rows: Iterable[Mapping[str, Any]], fields: Sequence[str],
                      org: str | None = None, *, org_field: str = "organization_id") -> list[dict[str, Any]]:
    """``rows`` as dicts with ``fields`` revealed (the organisation: ``org``, else each row's ``org_field``)."""
    out = [dict(r) for r in rows]
    orgs = [org if org is not None else r.get(org_field) for r in out]
    rev = await revealer(conn, [(o, r.get(f)) for o, r in zip(orgs, out, strict=True) for f in fields])
    for o, r in zip(orgs, out, strict=True):
        for f in fields:
            r[f] = rev.text(o, r.get(f))
    return out


async def reveal(conn: asyncpg.Connection, org: str, token: str | None) -> str | None:
    """The text of a sealed value for someone acting for ``org`` (None once its subject is erased)."""
    subject = sealed_subject(token or "")
    if subject is None:
        return token
    async with tenant_transaction(conn, [org], readonly=True):
        keys = await subject_keys(conn, org, [subject], create=False)
    return unseal(keys.get(subject), token or "")


# ---------------------------------------------------------------- erasure

async def erase_subject(admin: asyncpg.Connection, org: str, name: str, pepper: bytes, *,
                        memory_keys: Sequence[str] = ()) -> dict[str, Any]:
    """Destroy the key of subject ``name`` in ``org`` and forget what the classifier learnt under
    ``memory_keys`` (its counterparty keys: ``pipeline.classify.memory.subject_memory_keys``), in one
    transaction (owner connection). Idempotent."""
    subject = subject_id(pepper, org, name)
    o = uuid.UUID(org)
    async with admin.transaction():
        deleted = await admin.fetchval(
            "WITH d AS (DELETE FROM privacy_subject_keys WHERE organization_id = $1 AND subject_id = $2 RETURNING 1)"
            " SELECT count(*) FROM d", o, subject)
        forgotten = 0
        for key in memory_keys:
            forgotten += int(await admin.fetchval(
                "WITH u AS (UPDATE classifier_memory SET value = value #- ARRAY['orgs', $2::text, 'entries', $3],"
                " updated_at = now() WHERE organization_id = $1 AND value #> ARRAY['orgs', $2::text, 'entries', $3]"
                " IS NOT NULL RETURNING 1) SELECT count(*) FROM u", o, str(o), key))
    return {"organization_id": org, "subject_id": subject, "keys_destroyed": int(deleted),
            "memory_keys_forgotten": forgotten}
