"""``hera.review.decisions``: reviewers' decisions, one at a time. Each decision's effects (the
entry in the ledger, its posted message, its audit record) are published before the next decision
is applied, so a later decision never overtakes an earlier one's announcement. A decision that breaks
the step (a deeply nested or otherwise hostile message included) is dead-lettered, never a crash."""

from __future__ import annotations

import contextlib
from typing import Any

from agents.failure import isolate, record_letter
from agents.handlers import Context
from pipeline.envelopes import Record
from pipeline.flow import Staged
from pipeline.resilience.retry import retry_policy


class Decisions:
    name = "review"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def process(self, records: list[Record]) -> Staged:
        for rec in records:
            staged = await isolate(self.name, [rec], self.apply, record_letter)
            await retry_policy(self.name).call(lambda staged=staged: self.ctx.publisher.publish(self.name,  # type: ignore[misc]
                                                                                                staged.out))
        return Staged()

    async def apply(self, records: list[Record]) -> Staged:
        from pipeline.review import apply_decisions, organization_of
        from pipeline.signing import decision_key

        rt = self.ctx.rt
        orgs: set[str] = set()
        for r in records:
            with contextlib.suppress(ValueError, TypeError):
                if (org := organization_of(r.value)) is not None:
                    orgs.add(org)
        known = orgs & await rt.known_orgs()
        memory = await rt.memory(known, fresh=True)   # learn on top of what is stored (erasures included)
        # one decision at a time: its organisation's own catalog (thresholds, accounts) when it has one
        own = await rt.org_catalogs(known)
        catalog = own[next(iter(known))] if len(known) == 1 and next(iter(known)) in own else rt.catalog()
        result, taught = await apply_decisions(records, store=await rt.store(), catalog=catalog, memory=memory,
                                               decision_key=decision_key(rt.settings))  # signed decisions only
        await rt.save_memory(taught)
        return Staged(result)

    async def settle(self, _: Any) -> None:
        return None  # each decision was published as it was applied
