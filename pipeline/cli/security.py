"""``hera`` commands of data protection (SECURITY.md): the unmasked original of a dead letter, the
audit chain's signed checkpoints, and crypto-shredding of a data subject.

    hera deadletter original --partition P --offset O [--topic raw] [--sha256 HEX] [--out FILE]
    hera audit checkpoint [--out FILE]
    hera audit verify [--org ID] [--checkpoint FILE]
    hera privacy erase --org ID --subject NAME

Dead letters keep card numbers masked; their ``hera-source-partition`` / ``hera-source-offset``
headers say where the original sits in the raw topic, and ``hera-original-sha256`` what it hashes
to. Reading it is for an authorised operator: the command needs read access to the raw topic (the
PCI-scoped one) and says on stderr that what it prints may hold card data.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from pathlib import Path
from typing import Any

import click

from pipeline.cli.app import emit, fail, main
from pipeline.config import Settings

CONNECT_TIMEOUT_SECONDS = 10.0


@main.group("deadletter")
def deadletter() -> None:
    """Dead letters (values masked; originals stay in the raw topic)."""


@deadletter.command("original")
@click.option("--partition", type=int, required=True, help="hera-source-partition of the dead letter")
@click.option("--offset", type=int, required=True, help="hera-source-offset of the dead letter")
@click.option("--topic", "topic_key", default="raw", show_default=True,
              help="topic key (raw, validated, decisions …) or full name: hera-source-topic")
@click.option("--sha256", "expected", default=None, help="hera-original-sha256: refuse a record that differs")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write the original bytes to this file (mode 0600) instead of printing them")
@click.pass_obj
def deadletter_original(settings: Settings, partition: int, offset: int, topic_key: str, expected: str | None,
                        out: Path | None) -> None:
    """Fetch the unmasked original of a dead letter from the topic it came from (may hold card data)."""
    from pipeline.config import TOPICS

    topic = settings.topic(topic_key) if topic_key in TOPICS else topic_key
    from pipeline.originals import fetch_record

    value = asyncio.run(fetch_record(settings, topic, partition, offset))
    if value is None:
        fail(f"no record at {topic}/{partition}/{offset} (past the end, or removed by the topic's retention)")
        return
    digest = hashlib.sha256(value).hexdigest()
    if expected is not None and digest != expected.lower():
        fail(f"the record at {topic}/{partition}/{offset} is not the dead letter's original (sha256 {digest})")
    click.echo("hera: the original may hold card numbers in clear: handle it as PCI data", err=True)
    result: dict[str, Any] = {"topic": topic, "partition": partition, "offset": offset, "sha256": digest}
    if out is not None:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(value)
        result["written_to"] = str(out)
    else:
        try:
            result["value"] = value.decode("utf-8")
        except UnicodeDecodeError:
            result["value_b64"] = base64.b64encode(value).decode()
    emit(result)


# ---------------------------------------------------------------- audit: signed checkpoints

def _audit_group() -> click.Group:
    from pipeline.cli import pipeline_commands  # registered before this module (pipeline/cli/__init__.py)
    return pipeline_commands.audit


@_audit_group().command("checkpoint")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="file to write (default: <HERA_HOME>/audit-checkpoints/<UTC time>.json); keep it "
                   "outside the database's reach")
@click.pass_obj
def audit_checkpoint(settings: Settings, out: Path | None) -> None:
    """Write every organisation's chain head, signed with the audit key, to a file."""
    from datetime import UTC, datetime

    from pipeline.ledger.audit import chain_heads
    from pipeline.ledger.audit_keys import load_key, write_checkpoint

    now = datetime.now(UTC)
    path = out or Path(settings.home) / "audit-checkpoints" / f"{now.strftime('%Y%m%dT%H%M%S%fZ')}.json"
    heads = asyncio.run(_admin(settings, chain_heads))
    doc = write_checkpoint(path, heads, load_key(settings), now=now)
    emit({"written_to": str(path), "created_at": doc["created_at"], "organizations": len(heads)})


@_audit_group().command("verify")
@click.option("--org", "org_id", default=None)
@click.option("--checkpoint", "checkpoint_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="a file written by `hera audit checkpoint`: its heads must still be in the chain")
@click.pass_obj
def audit_verify(settings: Settings, org_id: str | None, checkpoint_file: Path | None) -> None:
    """Re-walk the keyed audit chains; exit 1 if a row was edited, deleted or reordered, or a
    checkpointed head is gone."""
    from pipeline.ledger.audit import verify_audit
    from pipeline.ledger.audit_keys import AuditKeyError, load_key, read_checkpoint

    key = load_key(settings)
    try:
        checkpoint = read_checkpoint(checkpoint_file, key) if checkpoint_file is not None else None
    except AuditKeyError as exc:
        fail(str(exc))
        return
    result = asyncio.run(_admin(settings, lambda c: verify_audit(c, org_id, key=key, checkpoint=checkpoint)))
    emit(result)
    if not result["ok"]:
        raise SystemExit(1)


async def _admin(settings: Settings, fn: Any) -> Any:
    import asyncpg
    conn = await asyncpg.connect(settings.dsn(), timeout=CONNECT_TIMEOUT_SECONDS)
    try:
        return await fn(conn)
    finally:
        await conn.close()


# ---------------------------------------------------------------- privacy: crypto-shredding

@main.group("privacy")
def privacy() -> None:
    """Personal data: erase a data subject by destroying its key."""


@privacy.command("erase")
@click.option("--org", "org_id", required=True, help="organisation id (UUID)")
@click.option("--subject", "name", required=True, help="the data subject's name, as it appears as counterparty")
@click.pass_obj
def privacy_erase(settings: Settings, org_id: str, name: str) -> None:
    """Destroy the subject's key: every text sealed with it becomes unreadable (ledger amounts and the
    audit chain are unchanged), and the classifier forgets what it learnt about that counterparty;
    the erasure is recorded in the organisation's audit chain (SECURITY.md §7)."""
    import uuid
    from datetime import UTC, datetime

    from pipeline.classify.memory import subject_memory_keys
    from pipeline.ledger.audit import AuditRecord
    from pipeline.ledger.audit_keys import load_key
    from pipeline.ledger.privacy import ERASED_ACTION, erase_subject, pepper_from
    from pipeline.ledger.store import LedgerStore

    key = load_key(settings)
    try:
        org = str(uuid.UUID(org_id))
    except ValueError:
        fail(f"--org {org_id!r} is not an organisation id (UUID)")
        return
    pepper = pepper_from(key)

    async def run() -> dict[str, Any]:
        result = await _admin(settings, lambda c: erase_subject(
            c, org, name, pepper, memory_keys=subject_memory_keys(org, name, pepper)))
        store = await LedgerStore.connect(settings.dsn(), pool_size=1, audit_key=key)
        try:
            await store.append_audit([AuditRecord(org, ERASED_ACTION, "operator", datetime.now(UTC),
                                                  subject=result["subject_id"],
                                                  payload={"keys_destroyed": result["keys_destroyed"],
                                                           "memory_keys_forgotten": result["memory_keys_forgotten"]})])
        finally:
            await store.close()
        return result

    emit(asyncio.run(run()))
