"""Drive the pipeline from outside, as a producer and a downstream consumer would.

``run_demo``: bounded — start a worker, produce N events, wait until every one is accounted for
(posted, in review or dead-lettered, tracked by its raw topic offset), print a summary, stop.
``run_with_sample_stream``: unbounded — the same with a live sample stream and a progress display,
for ``make run``; Ctrl-C stops the producer and the worker cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, deque
from collections.abc import Sequence
from typing import Any

import orjson

from pipeline.config import Settings

WORKER_STOP_TIMEOUT_SECONDS = 20.0


def ensure_services(settings: Settings) -> None:
    """Start the embedded services the environment does not point elsewhere, saying so on stderr."""
    from pipeline.devtools import services
    if settings.kafka_external and settings.database_external:
        return
    state = services.status(settings)
    missing = [name for name, key in (("Kafka broker", "kafka"), ("PostgreSQL", "postgres"))
               if state[key]["embedded"] and not state[key]["running"]]
    if missing:
        print(f"hera: starting the embedded {' and '.join(missing)} under {settings.home}/ (set "
              "HERA_KAFKA_BOOTSTRAP / HERA_DATABASE_URL to use your own)", file=sys.stderr)
    services.up(settings)


async def kafka_names(target: Settings | str) -> tuple[set[str], set[str]]:
    """The topics and consumer groups on the cluster now (``target``: settings, or a bare bootstrap)."""
    from aiokafka.admin import AIOKafkaAdminClient

    from pipeline.brokers import admin_kwargs

    admin = AIOKafkaAdminClient(**admin_kwargs(target), request_timeout_ms=10_000)
    await admin.start()
    try:
        return set(await admin.list_topics()), {g[0] for g in await admin.list_consumer_groups()}
    finally:
        await admin.close()


async def delete_run_names(target: Settings | str, prefixes: Sequence[str], before: tuple[set[str], set[str]]
                           ) -> dict[str, int]:
    """Delete the topics and consumer groups named ``<one of prefixes>…`` that were not there ``before``
    (a demo's or bench's own: ``isolated_run`` names them); what existed before the run, or belongs to
    anyone else (another run going on beside it, too), is left alone."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.protocol.admin import DeleteGroupsRequest

    from pipeline.brokers import admin_kwargs

    topics, groups = await kafka_names(target)
    runs = tuple(prefixes)
    mine_topics = sorted(t for t in topics - before[0] if t.startswith(runs))
    mine_groups = sorted(g for g in groups - before[1] if g.startswith(runs))
    admin = AIOKafkaAdminClient(**admin_kwargs(target), request_timeout_ms=10_000)
    await admin.start()
    try:
        if mine_topics:
            await admin.delete_topics(mine_topics)
        for group in mine_groups:
            node = await admin.find_coordinator(group)
            await admin._send_request(DeleteGroupsRequest([group]), node)
    finally:
        await admin.close()
    return {"topics_deleted": len(mine_topics), "groups_deleted": len(mine_groups)}


def start_worker(settings: Settings, env_extra: dict[str, str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, **env_extra, "HERA_HOME": str(settings.home.resolve())}
    log_path = settings.home / "worker.log"
    with open(log_path, "ab") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "pipeline", "run"], env=env, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=_owned_by_parent)


def _owned_by_parent() -> None:
    """In the worker child, before exec: its own process group, so a Ctrl-C at the terminal reaches
    only the parent (which stops producing, lets the worker drain, then stops it); and on Linux a
    SIGTERM when the parent dies, so a worker never outlives whoever started it."""
    os.setpgrp()
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(WORKER_STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Tracker:
    """Reads the outcome topics and accounts for every raw record by its (partition, offset).

    posted / review / dead letter carry the raw coordinates; duplicates are found in the audit
    topic; deferred (parked) events in the deferred topic until they reach another outcome.
    """

    OUTCOME_TOPICS = ("posted", "review", "deadletter", "audit", "deferred")

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.accounted: dict[tuple[int, int], str] = {}
        self.parked: set[tuple[int, int]] = set()
        self.reasons: Counter[str] = Counter()
        self.smart_codes: Counter[str] = Counter()
        self.extra: Counter[str] = Counter()
        self.posted_at_ms: dict[tuple[int, int], int] = {}  # broker timestamp of the posted message
        self._consumer: Any = None
        self._tps: list[Any] = []

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        from pipeline.brokers import client_kwargs

        self._consumer = AIOKafkaConsumer(**client_kwargs(self.settings), enable_auto_commit=False,
                                          auto_offset_reset="earliest", group_id=None)
        await self._consumer.start()
        self._tps = [TopicPartition(self.settings.topic(k), p) for k in self.OUTCOME_TOPICS
                     for p in range(self.settings.partitions)]
        self._consumer.assign(self._tps)
        await self._consumer.seek_to_beginning(*self._tps)

    async def poll(self) -> int:
        batches = await self._consumer.getmany(timeout_ms=200, max_records=5000)
        for tp, msgs in batches.items():
            for m in msgs:
                self._read(tp.topic, m)
        return sum(len(m) for m in batches.values())

    async def drain(self, timeout_seconds: float = 60.0) -> bool:
        """Read every outcome topic up to its current end; True if reached in time."""
        ends = await self._consumer.end_offsets(self._tps)
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            positions = {tp: await self._consumer.position(tp) for tp in self._tps}
            if all(positions[tp] >= ends[tp] for tp in self._tps):
                return True
            await self.poll()
        return False

    def _read(self, topic: str, m: Any) -> None:
        from pipeline.envelopes import headers_dict

        raw_topic = self.settings.topic("raw")
        if topic == self.settings.topic("deadletter"):
            h = headers_dict(m.headers)
            if h.get("hera-source-topic") != raw_topic:
                self.extra["deadletter_other"] += 1
                return
            self._account((int(h["hera-source-partition"]), int(h["hera-source-offset"])), "rejected")
            self.reasons[h.get("hera-reason", "?")] += 1
            return
        if topic == self.settings.topic("audit"):
            if b'"duplicate"' not in m.value:  # most audit messages say nothing the tracker needs
                return
            for rec in orjson.loads(m.value).get("records", []):
                if rec.get("outcome") == "duplicate" and rec.get("source"):
                    self._account(_coords(rec["source"]), "duplicate")
            return
        body = orjson.loads(m.value)
        where = body.get("origin") or body.get("source")   # posted/v2 says origin; envelopes say source
        key = _coords(where if isinstance(where, dict) else {})
        if topic == self.settings.topic("deferred"):
            self.parked.add(key)
        elif topic == self.settings.topic("posted"):
            self._account(key, "posted")
            self.posted_at_ms[key] = m.timestamp
            self.smart_codes[body.get("smart_code", "?")] += 1
        else:
            self._account(key, "review")
            self.reasons[body.get("review_reason") or "review"] += 1

    def _account(self, key: tuple[int, int], outcome: str) -> None:
        if key in self.accounted:
            self.extra[f"repeat_{outcome}"] += 1
        self.accounted[key] = outcome

    def counts(self) -> Counter[str]:
        counts = Counter(self.accounted.values())
        counts["deferred"] = len(self.parked - set(self.accounted))
        return counts

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()


def _coords(src: dict[str, Any]) -> tuple[int, int]:
    return int(src.get("partition", -1)), int(src.get("offset", -1))


async def account_for_raw(settings: Settings, timeout_seconds: float = 60.0) -> dict[str, Any]:
    """Invariant 3 of docs/invariants.md on the topics: every raw record is posted, in review, dead-lettered,
    a duplicate, or deferred. Returns counts and the raw records accounted for by none."""
    from aiokafka import TopicPartition

    tracker = Tracker(settings)
    await tracker.start()
    try:
        complete = await tracker.drain(timeout_seconds)
        raw_tps = [TopicPartition(settings.topic("raw"), p) for p in range(settings.partitions)]
        ends = await tracker._consumer.end_offsets(raw_tps)
    finally:
        await tracker.stop()
    raw = {(tp.partition, off) for tp in raw_tps for off in range(ends[tp])}
    known = set(tracker.accounted) | tracker.parked
    missing = sorted(raw - known)
    counts = tracker.counts()
    return {"raw_events": len(raw), "posted": counts["posted"], "review": counts["review"],
            "rejected": counts["rejected"], "duplicate": counts["duplicate"], "deferred": counts["deferred"],
            "unaccounted": len(missing), "unaccounted_sample": missing[:20], "topics_read_completely": complete,
            "ok": complete and not missing}


def org_key(value: bytes) -> bytes | None:
    """The key a well-behaved producer gives a raw event: its organisation id (None if unreadable)."""
    from pipeline.replay import org_of

    org = org_of(value)
    return org.encode() if isinstance(org, str) else None


async def produce(settings: Settings, events: list[bytes], keys: list[bytes | None] | None = None) -> list[Any]:
    """Write raw events keyed by organisation, as producers should (an organisation's events then
    stay in order on one partition, and the worker skips the re-keying hop); returns each one's
    RecordMetadata (partition, offset, timestamp). ``keys``: the events' ``org_key``s, if known."""
    from aiokafka import AIOKafkaProducer

    from pipeline.brokers import client_kwargs

    keys = keys if keys is not None else [org_key(value) for value in events]
    producer = AIOKafkaProducer(**client_kwargs(settings), linger_ms=5, max_batch_size=256 * 1024)
    await producer.start()
    try:
        futures = [await producer.send(settings.topic("raw"), value, key=key)
                   for value, key in zip(events, keys, strict=True)]
        return list(await asyncio.gather(*futures))
    finally:
        await producer.stop()


RUN_PREFIXES: list[str] = []  # the topic prefix of every run this process started (for its clean-up)


def isolated_run(settings: Settings, label: str, n_events: int) -> tuple[Settings, list[bytes]]:
    """Services up, a fresh topic prefix (so a run never mixes with another), topics and schema
    ready, and ``n_events`` sample events seeded by the run id."""
    from agents.worker import prepare
    from pipeline.devtools.sample import sample_events

    ensure_services(settings)
    run_id = uuid.uuid4().hex[:8]
    settings = settings.model_copy(update={"topic_prefix": f"{settings.topic_prefix}{label}-{run_id}."})
    RUN_PREFIXES.append(settings.topic_prefix)
    prepare(settings)
    return settings, list(sample_events(n_events, seed=int(run_id, 16) % 10_000))


def run_demo(settings: Settings, n_events: int, *, timeout_seconds: float = 300.0) -> dict[str, Any]:
    settings, events = isolated_run(settings, "demo", n_events)
    worker = start_worker(settings, {"HERA_TOPIC_PREFIX": settings.topic_prefix})
    started = time.monotonic()
    try:
        summary = asyncio.run(_drive(settings, events, timeout_seconds, started))
    finally:
        stop_worker(worker)
    summary["worker_exit_code"] = worker.returncode
    return summary


async def _drive(settings: Settings, events: list[bytes], timeout_seconds: float, started: float
                 ) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    tracker = Tracker(settings)
    await tracker.start()
    try:
        await produce(settings, events)
        produced_at = time.monotonic()
        with Progress(TextColumn("[bold]accounted for"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      transient=True, disable=not sys.stderr.isatty()) as bar:
            task = bar.add_task("events", total=len(events))
            while len(tracker.accounted) < len(events) and time.monotonic() - started < timeout_seconds:
                await tracker.poll()
                bar.update(task, completed=len(tracker.accounted))
        elapsed = time.monotonic() - started
    finally:
        await tracker.stop()
    counts = tracker.counts()
    return {
        "events": len(events),
        "accounted_for": len(tracker.accounted),
        "all_accounted_for": len(tracker.accounted) == len(events),
        "posted": counts["posted"], "review": counts["review"], "rejected": counts["rejected"],
        "reasons": dict(tracker.reasons), "smart_codes": dict(tracker.smart_codes.most_common()),
        "anomalies": dict(tracker.extra),
        "seconds": round(elapsed, 2), "produce_seconds": round(produced_at - started, 2),
        "events_per_second": round(len(events) / elapsed, 1) if elapsed else None,
        "topic_prefix": settings.topic_prefix,
    }


DRAIN_SECONDS_MAX = 30.0


def run_with_sample_stream(settings: Settings, *, rate: float) -> None:
    from agents.worker import prepare

    ensure_services(settings)
    prepare(settings)
    worker = start_worker(settings, {})
    print(f"hera: worker pid {worker.pid} (log: {settings.home / 'worker.log'}); producing ~{rate:.0f} "
          "sample events/s; Ctrl-C to stop", file=sys.stderr)
    try:
        asyncio.run(_sample_loop(settings, rate, worker))
    except KeyboardInterrupt:
        pass
    finally:
        print("hera: stopping worker …", file=sys.stderr)
        stop_worker(worker)


async def _sample_loop(settings: Settings, rate: float, worker: subprocess.Popen[bytes]) -> None:
    from aiokafka import AIOKafkaProducer
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    from pipeline.brokers import client_kwargs
    from pipeline.devtools.sample import sample_events, sample_orgs

    tracker = Tracker(settings)
    await tracker.start()
    producer = AIOKafkaProducer(**client_kwargs(settings), linger_ms=5)
    await producer.start()
    seed = int(time.time()) % 100_000
    # one event per organisation per second at most: well under the default 100/minute limit
    stream = sample_events(10**9, seed=seed, orgs=sample_orgs(max(3, int(rate) * 2), seed))
    produced = 0
    started = time.monotonic()

    def view() -> Table:
        counts = tracker.counts()
        table = Table(title="HERA Stream — live", show_header=True)
        for col in ("produced", "posted", "review", "rejected", "in flight"):
            table.add_column(col, justify="right")
        table.add_row(str(produced), str(counts["posted"]), str(counts["review"]), str(counts["rejected"]),
                      str(in_flight()))
        return table

    sent: deque[Any] = deque()  # produce futures, in order -> RecordMetadata (raw partition, offset)
    mine: set[tuple[int, int]] = set()

    def in_flight() -> int:
        """Events of this run not yet accounted for (exact: by raw coordinates, so events of
        earlier runs on the same topics never count)."""
        while sent and sent[0].done():
            meta = sent.popleft().result()
            mine.add((meta.partition, meta.offset))
        mine.difference_update([k for k in mine if k in tracker.accounted])
        return len(mine) + len(sent)

    try:
        with Live(console=Console(stderr=True), refresh_per_second=4, transient=False) as live:
            try:
                while worker.poll() is None:
                    due = int((time.monotonic() - started) * rate) - produced
                    for _ in range(max(due, 0)):
                        value = next(stream)
                        sent.append(await producer.send(settings.topic("raw"), value, key=org_key(value)))
                        produced += 1
                    await tracker.poll()
                    live.update(view())
            except asyncio.CancelledError:
                # Ctrl-C: stop producing and let the worker finish what is in flight (a second
                # Ctrl-C stops at once; what is left is completed by the next run, never lost)
                live.console.print(f"hera: draining {in_flight()} in flight (Ctrl-C again to stop now)")
                deadline = time.monotonic() + DRAIN_SECONDS_MAX
                while in_flight() and worker.poll() is None and time.monotonic() < deadline:
                    await tracker.poll()
                    live.update(view())
                raise
            print(f"hera: worker exited with {worker.returncode}; see {settings.home / 'worker.log'}",
                  file=sys.stderr)
    finally:
        with contextlib.suppress(Exception):
            await producer.stop()
        await tracker.stop()
