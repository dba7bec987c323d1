"""The worker's agents: one per topic, each the generic runner (``agents/runner.py``) over batches
that close when nothing more is buffered (``agents/source.py``), driving that topic's handler
(``agents/handlers/``).

    hera.validate   raw topic        validate; events on their organisation's partition go on at once
    hera.classify   validated topic  admission, classification, ledger
    hera.deferred   deferred topic   re-admission of parked events
    hera.review     decisions topic  reviewers' decisions
    hera.audit      audit topic      audit records into the ledger's hash chain

Failure policy (Faust acks whatever its agent was handed, even when the body raises): a message that
breaks a step is dead-lettered as POISON and the batch goes on (``agents/failure.py``); transient
faults are retried by the one bounded policy (``pipeline/resilience/retry.py``). When that policy gives
up, the batch is not released and the worker stops (``app.crash``): its records and every later one
of the same partitions are still uncommitted, and are redelivered to the partition's next owner.
"""

from __future__ import annotations

import logging
from typing import Any

import faust

from agents.admission import create_tables
from agents.handlers import Context
from agents.handlers.audit import Audit
from agents.handlers.decisions import Decisions
from agents.handlers.deferred import Deferred
from agents.handlers.events import Events
from agents.handlers.raw import Raw
from agents.handlers.validated import Validated
from agents.profile import HOP_SECONDS, observe_processed, observe_taken, write_summary
from agents.publish import Publisher
from agents.raw_reader import RawReader
from agents.runner import Runner, SettleFailed, Stage
from agents.runtime import Runtime
from agents.source import ready_batches
from pipeline.brokers import client_kwargs
from pipeline.config import Settings
from pipeline.observability import logs, metrics

log = logging.getLogger("hera.agents")

SOURCES = ("raw", "validated", "decisions", "audit", "deferred")


def observe(stage: str) -> Any:
    def on_released(records: int, seconds: float) -> None:
        metrics.BATCH_SECONDS.labels(stage).observe(seconds)
        metrics.BATCH_SIZE.labels(stage).observe(records)
        metrics.LAG.labels(stage).set_to_current_time()
        HOP_SECONDS.labels(stage, "release").observe(seconds)
    return on_released


def register(app: faust.App, settings: Settings) -> Runtime:
    rt = Runtime(settings)
    rt.catalog()  # load the model and the calibrated catalog now, not inside the first batch
    raw_reader = RawReader(client_kwargs(settings))
    ctx = Context(app, settings, rt, create_tables(app, settings.partitions), Publisher(app, settings, raw_reader))
    topics = {key: app.topic(settings.topic(key), key_type=bytes, value_type=bytes) for key in SOURCES}
    events = Events(ctx)
    raw, validated = Raw(ctx, events), Validated(events)
    deferred, decisions, audit = Deferred(ctx), Decisions(ctx), Audit(ctx)
    stages: dict[str, Stage[Any]] = {
        "raw": Stage(raw.name, raw.process, events.settle, events.write),
        "validated": Stage(validated.name, validated.process, events.settle, events.write),
        "deferred": Stage(deferred.name, deferred.process, deferred.settle),
        "decisions": Stage(decisions.name, decisions.process, decisions.settle),
        "audit": Stage(audit.name, audit.process, audit.settle),
    }
    for source, stage in stages.items():
        stage.on_taken = observe_taken(stage.name)
        stage.on_processed = observe_processed(stage.name)
        stage.on_released = observe(stage.name)
        events_path = source in ("raw", "validated")
        in_flight = (settings.batch_in_flight_max, settings.batch_in_flight_backlog_max) if events_path else (1, 1)
        linger = settings.audit_linger_ms / 1000 if source == "audit" else 0.0
        agent(app, topics[source], stage, settings.batch_size_max, in_flight, linger)

    @app.on_before_shutdown.connect  # type: ignore[untyped-decorator,arg-type]
    async def _close(app: faust.App, **_: Any) -> None:
        if settings.profile_file is not None:
            write_summary(settings.profile_file)
        await raw_reader.close()
        await rt.close()

    return rt


def agent(app: faust.App, topic: Any, stage: Stage[Any], batch_size_max: int, in_flight: tuple[int, int],
          linger_seconds: float = 0.0) -> None:
    """``in_flight``: batches between take and release, normally and under backlog (a batch of at least
    half the size cap)."""
    async def body(stream: faust.StreamT) -> None:
        logs.bind(stage=stage.name)  # every record this agent's task logs carries its stage (JSON logs)
        runner = Runner(stage, in_flight_max=in_flight[0], backlog_in_flight_max=in_flight[1],
                        backlog_size=max(1, batch_size_max // 2))
        try:
            await runner.run(ready_batches(stream, batch_size_max, linger_seconds))
        except SettleFailed as exc:
            # given up on: stop the worker rather than go on past records that are not released
            log.critical("%s: stopping the worker: %s", stage.name, exc)
            await app.crash(exc)

    body.__name__ = f"{stage.name}_agent"
    app.agent(topic, name=f"hera.{stage.name}", concurrency=1)(body)
