"""``hera.transactions.validated``: envelopes re-keyed by organisation (or re-admitted from the
deferred topic), through admission, classification and the ledger (``events.py``)."""

from __future__ import annotations

import orjson

from agents.failure import add_letter, record_letter
from agents.handlers.events import Events, Pending
from pipeline.envelopes import Record, ValidatedEnvelope
from pipeline.flow import InlineItem, Staged


class Validated:
    name = "classify"

    def __init__(self, events: Events) -> None:
        self.events = events

    async def process(self, records: list[Record]) -> Pending:
        staged, items = Staged(), list[InlineItem]()
        for rec in records:
            try:
                items.append((ValidatedEnvelope.from_json(orjson.loads(rec.value)), rec.partition, None))
            except ValueError as exc:  # not ours (EnvelopeInvalid included): nothing else can be done with it
                add_letter(staged, record_letter(rec, self.name, exc))
        return await self.events.admit_classify(self.name, items, staged)
