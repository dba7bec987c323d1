"""``hera.audit``: audit records into each organisation's hash chain in the ledger.

Posted entries are chained by the store in the posting transaction itself; records without an
organisation (unparseable input) stay on the audit topic and in the dead-letter topic, as there is no
tenant chain to put them in."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from agents.failure import isolate, record_letter
from agents.handlers import Context
from pipeline.envelopes import Record
from pipeline.flow import Staged
from pipeline.resilience.retry import retry_policy


def audit_rows(recs: list[dict[str, Any]]) -> list[Any]:
    from pipeline.ledger.audit import AuditRecord

    rows = []
    for r in recs:
        org = r.get("organization_id")
        if not org or r.get("outcome") == "posted" or r.get("reason") == "ORG_UNKNOWN":
            continue
        key = f"{r['stage']}:{r.get('event_id')}:{r['outcome']}"
        rows.append(AuditRecord(organization_id=org, action=f"event.{r['outcome']}", actor="hera-stream",
                                occurred_at=datetime.fromtimestamp(r["at"], UTC), subject=r.get("event_id"),
                                payload={k: v for k, v in r.items() if k not in {"at", "organization_id"}},
                                record_key=key))
    return rows


class Audit:
    name = "audit"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def process(self, records: list[Record]) -> Staged:
        return await isolate(self.name, records, self.append, record_letter)

    async def append(self, records: list[Record]) -> Staged:
        store = await self.ctx.rt.store()
        await store.append_audit([a for rec in records for a in audit_rows(orjson.loads(rec.value)["records"])])
        return Staged()

    async def settle(self, staged: Staged) -> None:
        await retry_policy(self.name).call(lambda: self.ctx.publisher.publish(self.name, staged.out))
