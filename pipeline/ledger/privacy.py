"""Keys of data subjects in PostgreSQL (``privacy_subject_keys``, migration 0011), sealing of an
entry's personal text with them, and erasure (crypto-shredding): ``pipeline.domain.privacy`` is
the pure part and says how text is sealed.

A subject is a counterparty name within an organisation. An entry's ``counterparty``, its
``description`` and its lines' descriptions are sealed with the key of the entry's counterparty
(when it has one): erasing that subject makes all of it unreadable, while amounts, accounts,
smart codes and the audit chain (which digests none of that text) stay as they were.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg

from pipeline.domain.entries import JournalEntry
from pipeline.domain.privacy import seal, subject_id, unseal
from pipeline.ledger.tenancy import tenant_transaction

ERASED_ACTION = "privacy.subject_erased"


def pepper_from(audit_key: bytes) -> bytes:
    """The key that turns names into subject ids, derived from the audit key (domain-separated)."""
    return hmac.new(audit_key, b"hera-privacy-subject-id", hashlib.sha256).digest()


async def subject_keys(conn: asyncpg.Connection, org: str, subjects: Iterable[str], *, create: bool
                       ) -> dict[str, bytes]:
    """The keys of ``subjects`` in ``org`` (created when missing and ``create``); call inside a
    transaction acting for ``org``."""
    wanted = sorted(set(subjects))
    if create and wanted:
        await conn.execute(
            "INSERT INTO privacy_subject_keys (organization_id, subject_id, key)"
            " SELECT $1, s, k FROM unnest($2::text[], $3::bytea[]) AS x(s, k) ON CONFLICT DO NOTHING",
            uuid.UUID(org), wanted, [os.urandom(32) for _ in wanted])
    rows = await conn.fetch("SELECT subject_id, key FROM privacy_subject_keys WHERE organization_id = $1"
                            " AND subject_id = ANY($2::text[])", uuid.UUID(org), wanted)
    return {r["subject_id"]: bytes(r["key"]) for r in rows}


def sealed_entry(entry: JournalEntry, pepper: bytes, keys: dict[str, bytes]) -> JournalEntry:
    """``entry`` with its counterparty, description and line descriptions sealed with the key of its
    counterparty (unchanged when it has none)."""
    if not entry.counterparty:
        return entry
    subject = subject_id(pepper, entry.organization_id, entry.counterparty)
    key = keys[subject]

    def s(text: str | None) -> str | None:
        return None if text is None else seal(key, subject, text, nonce=os.urandom(16))

    return dataclasses.replace(entry, counterparty=s(entry.counterparty), description=s(entry.description),
                               lines=tuple(dataclasses.replace(line, description=s(line.description))
                                           for line in entry.lines))


async def seal_entries(conn: asyncpg.Connection, entries: Sequence[JournalEntry], pepper: bytes) -> list[JournalEntry]:
    """Seal the personal text of ``entries`` (creating subject keys as needed), ready to post."""
    by_org: dict[str, set[str]] = {}
    for entry in entries:
        if entry.counterparty:
            by_org.setdefault(entry.organization_id, set()).add(
                subject_id(pepper, entry.organization_id, entry.counterparty))
    keys: dict[str, bytes] = {}
    for org, subjects in by_org.items():
        async with tenant_transaction(conn, [org]):
            keys.update(await subject_keys(conn, org, subjects, create=True))
    return [sealed_entry(entry, pepper, keys) for entry in entries]


async def reveal(conn: asyncpg.Connection, org: str, token: str | None) -> str | None:
    """The text of a sealed value for someone acting for ``org`` (None once its subject is erased)."""
    from pipeline.domain.privacy import sealed_subject

    subject = sealed_subject(token or "")
    if subject is None:
        return token
    async with tenant_transaction(conn, [org], readonly=True):
        keys = await subject_keys(conn, org, [subject], create=False)
    return unseal(keys.get(subject), token or "")


async def erase_subject(admin: asyncpg.Connection, org: str, name: str, pepper: bytes) -> dict[str, Any]:
    """Destroy the key of subject ``name`` in ``org`` (owner connection). Idempotent."""
    subject = subject_id(pepper, org, name)
    deleted = await admin.fetchval(
        "WITH d AS (DELETE FROM privacy_subject_keys WHERE organization_id = $1 AND subject_id = $2 RETURNING 1)"
        " SELECT count(*) FROM d", uuid.UUID(org), subject)
    return {"organization_id": org, "subject_id": subject, "keys_destroyed": int(deleted)}
