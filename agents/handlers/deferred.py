"""``hera.transactions.deferred``: parked events, re-admitted in order when their organisation's quota
frees (back to the validated topic, marked ``admitted``), or parked again with a new ticket."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import orjson

from agents.admission import Verdict, admit_parked
from agents.failure import isolate, record_letter
from agents.handlers import Context
from agents.handlers.events import admission_outcome
from pipeline.domain.errors import ensure
from pipeline.envelopes import Emit, ParkedEnvelope, Record, dumps
from pipeline.flow import BatchResult, Staged
from pipeline.resilience.retry import retry_policy

SLEEP_SECONDS_MAX = 2.0  # a parked batch waits for its quota at most this long per take


class Deferred:
    name = "deferred"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def process(self, records: list[Record]) -> Staged:
        return await isolate(self.name, records, self.readmit, record_letter)

    async def readmit(self, records: list[Record]) -> Staged:
        envelopes = [ParkedEnvelope.from_json(orjson.loads(r.value)) for r in records]
        wait = min(env.not_before for env in envelopes) - time.time()
        if wait > 0:
            await asyncio.sleep(min(wait, SLEEP_SECONDS_MAX))
        limit_of = await self.ctx.rt.limits({e.validated.org for e in envelopes})
        decisions, changelog = admit_parked(self.ctx.tables, [(env, r.partition)
                                                              for env, r in zip(envelopes, records, strict=True)],
                                            limit_of)
        out = BatchResult(changelog=changelog)
        for env, adm in zip(envelopes, decisions.admissions, strict=True):
            org = env.validated.org
            if adm.verdict is Verdict.ADMIT:
                back = replace(env.validated, admitted=True)
                out.emits.append(Emit("validated", org.encode(), dumps(back.to_json())))
                out.count("readmitted")
            elif adm.verdict is Verdict.DEFER:
                ensure(adm.seq is not None and adm.not_before is not None, "a DEFER verdict carries its ticket")
                again = ParkedEnvelope(env.validated, int(adm.seq or 0), float(adm.not_before or 0))
                out.emits.append(Emit("deferred", org.encode(), dumps(again.to_json())))
            else:
                admission_outcome(out, env.validated, adm)
        return Staged(out)

    async def settle(self, staged: Staged) -> None:
        await retry_policy(self.name).call(lambda: self.ctx.publisher.publish(self.name, staged.out))
