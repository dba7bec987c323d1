"""``hera.transactions.raw``: validate each record; an event already on its organisation's partition
goes on through admission, classification and the ledger in this same batch (``events.py``), the
others are re-keyed by organisation to ``hera.transactions.validated``, as Kafka Streams skips the
repartition for keys that already match."""

from __future__ import annotations

import asyncio

from agents.failure import isolate, record_letter
from agents.handlers import Context
from agents.handlers.events import Events, Pending
from agents.publish import org_partition
from agents.tuning import chunks
from pipeline.envelopes import Record
from pipeline.flow import Staged, validate_batch


class Raw:
    name = "validate"

    def __init__(self, ctx: Context, events: Events) -> None:
        self.ctx, self.events = ctx, events

    def on_its_partition(self, rec: Record, org: str) -> bool:
        return rec.partition == org_partition(org, self.ctx.settings.partitions)

    async def validate(self, records: list[Record]) -> Staged:
        rt, settings = self.ctx.rt, self.ctx.settings
        known = await rt.known_orgs()
        out, work, seen = validate_batch(records, known_orgs=None if settings.auto_provision_orgs else known,
                                         payload_bytes_max=settings.payload_bytes_max, inline=self.on_its_partition,
                                         window=settings.occurred_at_window())
        await rt.provision(seen - known)
        return Staged(out, work)

    async def process(self, records: list[Record]) -> Pending:
        staged = Staged()
        for chunk in chunks(records):   # the event loop runs between chunks: see agents/tuning.py
            staged.merge(await isolate("validate", chunk, self.validate, record_letter))
            await asyncio.sleep(0)
        inline, staged.work.inline = staged.work.inline, []
        return await self.events.admit_classify(self.name, inline, staged)
