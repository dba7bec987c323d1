"""Shared harness for the end-to-end and fault tests: a pipeline under test on the real broker and
PostgreSQL, driven from outside as in production (worker subprocesses, a producer, a Tracker).

``Pipeline`` owns the worker processes it starts (and only those) and stops them when the test
ends, SIGKILL included if a test left one hanging. Events are structured (``invoice.issued``,
``payment.received``, ``payment.sent``): rules classify them with confidence 1.0, so every valid
one auto-posts whatever the ML model does, and exact counts can be asserted.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from pipeline.config import Settings
from pipeline.devtools.live import Tracker, account_for_raw, start_worker, stop_worker

STRUCTURED_KINDS = ("invoice.issued", "payment.received", "payment.sent")
EVENTS_PER_ORG_MAX = 80  # under the default burst of 100 per organisation


def org_ids(count: int, seed: int | str) -> list[str]:
    rng = random.Random(f"harness-orgs-{seed}")
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(count)]


def structured_event(org: str, event_id: str, i: int, *, kind: str | None = None,
                     amount: str | None = None) -> dict[str, Any]:
    """One complete structured event, built the way ``pipeline.devtools.sample`` builds them."""
    kind = kind or STRUCTURED_KINDS[i % len(STRUCTURED_KINDS)]
    when = (datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=i)).isoformat().replace("+00:00", "Z")
    amount = amount or f"{100 + (i * 37) % 4900}.{i % 100:02d}"
    event: dict[str, Any] = {"schema_version": 1, "event_id": event_id, "organization_id": org,
                             "occurred_at": when, "source": "erp", "kind": kind, "amount": amount,
                             "currency": "USD", "counterparty": "Acme Trading LLC"}
    if kind == "invoice.issued":
        event["tax"] = {"rate": "0.05"}
        event["reference"] = f"INV-{i:06d}"
    return event


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


def structured_events(n: int, *, seed: int | str, orgs: list[str] | None = None) -> list[bytes]:
    """``n`` structured events spread round-robin over enough organisations to stay under the
    default rate limit."""
    orgs = orgs or org_ids(max(1, -(-n // EVENTS_PER_ORG_MAX)), seed)
    return [encode(structured_event(orgs[i % len(orgs)], f"evt-{seed}-{i:06d}", i)) for i in range(n)]


async def worker_login(database_url: str) -> str:
    """The DSN of ``hera_worker`` on a migrated database (the worker refuses the owner's login)."""
    from pipeline.ledger.roles import WORKER_ROLE, set_worker_password, with_login
    # one password per server (the role is cluster-wide): pipelines sharing the server agree on it
    password = hashlib.sha256(database_url.rsplit("/", 1)[0].encode()).hexdigest()[:32]
    await set_worker_password(database_url, password)
    return with_login(database_url, WORKER_ROLE, password)


@dataclass
class Pipeline:
    """One pipeline under test: a topic namespace, a database, and the workers started on them."""

    kafka_bootstrap: str
    database_url: str
    topic_prefix: str
    home: Path
    partitions: int = 2
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    security: dict[str, str] = field(default_factory=dict)  # Settings fields, e.g. kafka_sasl_username
    worker_database_url: str = ""   # the workers' own login, set by prepare()

    @property
    def settings(self) -> Settings:
        return Settings(kafka_bootstrap=self.kafka_bootstrap, database_url=self.database_url,
                        topic_prefix=self.topic_prefix, home=self.home, partitions=self.partitions,
                        app_id=f"hera-{self.topic_prefix}", **self.security)  # type: ignore[arg-type]

    async def prepare(self) -> None:
        from pipeline.brokers import ensure_topics
        from pipeline.ledger.migrate import migrate

        await ensure_topics(self.settings)
        await migrate(self.database_url)
        # the workers log in as hera_worker (no BYPASSRLS, not the owner), as in production
        self.worker_database_url = await worker_login(self.database_url)

    def start_worker(self, worker_id: str | None = None, **env: str) -> subprocess.Popen[bytes]:
        """A worker subprocess on this pipeline (same app id and prefix each time)."""
        s = self.settings
        base = {"HERA_KAFKA_BOOTSTRAP": self.kafka_bootstrap, "HERA_DATABASE_URL": self.database_url,
                "HERA_WORKER_DATABASE_URL": self.worker_database_url,
                "HERA_TOPIC_PREFIX": self.topic_prefix, "HERA_PARTITIONS": str(self.partitions),
                "HERA_APP_ID": s.app_id, "HERA_WORKER_ID": worker_id or f"w{len(self.workers)}",
                **{f"HERA_{name.upper()}": value for name, value in self.security.items()}}
        proc = start_worker(s, {**base, **env})
        self.workers.append(proc)
        return proc

    @staticmethod
    def kill(proc: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGKILL) -> None:
        if proc.poll() is None:
            proc.send_signal(sig)

    def stop(self) -> None:
        for proc in self.workers:  # only the processes this pipeline started
            stop_worker(proc)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return (self.home / "worker.log").read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return "(no worker log)"

    async def produce(self, events: Iterable[bytes], *, key: bytes | None = None, by_org: bool = False) -> None:
        """Write raw events in order (with ``key``, all on one partition, so their order is kept;
        ``by_org``: each keyed by its organisation, as a well-behaved producer does)."""
        from aiokafka import AIOKafkaProducer

        from pipeline.brokers import client_kwargs
        from pipeline.devtools.live import org_key

        producer = AIOKafkaProducer(**client_kwargs(self.settings), linger_ms=5,
                                    max_request_size=2_000_000, max_batch_size=256 * 1024)
        await producer.start()
        try:
            futures = [await producer.send(self.settings.topic("raw"), value, key=org_key(value) if by_org else key)
                       for value in events]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    async def wait_for(self, tracker: Tracker, done: Callable[[Tracker], bool], timeout_seconds: float, *,
                       what: str = "", watch: list[subprocess.Popen[bytes]] | None = None) -> None:
        """Poll the outcome topics until ``done(tracker)``; fail with the worker log on timeout or if a
        watched worker dies."""
        deadline = time.monotonic() + timeout_seconds
        while not done(tracker):
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}: {len(tracker.accounted)} accounted, "
                            f"{dict(tracker.counts())}; where the others are: {await self.diagnose()}; "
                            f"worker log:\n{self.log_tail()}")
            for proc in watch or []:
                if proc.poll() is not None:
                    pytest.fail(f"worker {proc.pid} exited with {proc.returncode} while waiting for {what}; "
                                f"log:\n{self.log_tail()}")
            await tracker.poll()

    async def wait_accounted(self, n: int, timeout_seconds: float, *,
                             watch: list[subprocess.Popen[bytes]] | None = None) -> Tracker:
        """Wait until ``n`` raw events are accounted for with a final outcome (not merely parked)."""
        tracker = Tracker(self.settings)
        await tracker.start()
        try:
            await self.wait_for(tracker, lambda t: len(t.accounted) >= n, timeout_seconds,
                                what=f"{n} raw events accounted for", watch=watch)
        finally:
            await tracker.stop()
        return tracker

    async def invariant3(self) -> dict[str, Any]:
        """``account_for_raw`` (docs/invariants.md invariant 3 on the topics), asserted complete."""
        acc = await account_for_raw(self.settings, timeout_seconds=30)
        assert acc["topics_read_completely"], acc
        assert acc["unaccounted"] == 0, f"raw events accounted for by nothing: {acc}"
        return acc

    async def ledger(self) -> dict[str, Any]:
        """``verify_ledger`` plus the entry counts that show idempotency (one per (org, event_id))."""
        from pipeline.ledger.audit_keys import load_key
        from pipeline.ledger.verify import verify_ledger

        conn = await asyncpg.connect(self.database_url)
        try:
            report = await verify_ledger(conn, key=load_key(self.settings))   # the workers' key (same home)
            report["distinct_keys"] = await conn.fetchval(
                "SELECT count(*) FROM (SELECT DISTINCT organization_id, event_id FROM universal_transactions) k")
        finally:
            await conn.close()
        return report

    async def diagnose(self) -> dict[str, Any]:
        """For raw events accounted for by nothing: the furthest topic each reached, by raw partition,
        and the consumer group's committed offsets (to tell a stuck partition from a lost record)."""
        from aiokafka import AIOKafkaConsumer, TopicPartition

        from pipeline.devtools.live import account_for_raw

        acc = await account_for_raw(self.settings, timeout_seconds=20)
        reached: dict[tuple[int, int], str] = {}
        for key in ("validated", "deferred", "classified"):
            for m in await self.read_topic(key):
                src = json.loads(m.value).get("source") or {}
                reached[(int(src.get("partition", -1)), int(src.get("offset", -1)))] = key
        tracker = Tracker(self.settings)
        await tracker.start()
        try:
            await tracker.drain(20)
        finally:
            await tracker.stop()
        raw_ends = {p: 0 for p in range(self.partitions)}
        for m in await self.read_topic("raw"):
            raw_ends[m.partition] = max(raw_ends[m.partition], m.offset + 1)
        missing = sorted({(p, o) for p, end in raw_ends.items() for o in range(end)} - set(tracker.accounted)
                         - tracker.parked)
        where: dict[str, int] = {}
        for p, o in missing:
            k = f"p{p}:{reached.get((p, o), 'raw only')}"
            where[k] = where.get(k, 0) + 1
        committed: dict[str, Any] = {}
        group = f"{self.topic_prefix}{self.settings.app_id}"
        from pipeline.brokers import client_kwargs

        probe = AIOKafkaConsumer(**client_kwargs(self.settings), group_id=group, enable_auto_commit=False)
        try:
            await probe.start()
            for key in ("raw", "validated", "classified", "deferred"):
                for p in range(self.partitions):
                    committed[f"{key}/{p}"] = await probe.committed(TopicPartition(self.settings.topic(key), p))
        except Exception as exc:  # diagnostics only
            committed["error"] = repr(exc)
        finally:
            await probe.stop()
        conn = await asyncpg.connect(self.database_url)
        try:
            entries = await conn.fetchval("SELECT count(*) FROM universal_transactions")
        finally:
            await conn.close()
        return {"unaccounted": acc["unaccounted"], "ledger_entries": entries, "missing_by_partition_and_stage": where,
                "missing_sample": missing[:10], "raw_ends": raw_ends, "committed": committed}

    async def read_topic(self, key: str, timeout_seconds: float = 20.0) -> list[Any]:
        """Every record of one of the pipeline's topics, up to its current end, in partition order."""
        from aiokafka import AIOKafkaConsumer, TopicPartition

        from pipeline.brokers import client_kwargs

        consumer = AIOKafkaConsumer(**client_kwargs(self.settings), enable_auto_commit=False,
                                    auto_offset_reset="earliest", group_id=None,
                                    fetch_max_bytes=8 * 1024 * 1024, max_partition_fetch_bytes=4 * 1024 * 1024)
        await consumer.start()
        try:
            tps = [TopicPartition(self.settings.topic(key), p) for p in range(self.partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            out: list[Any] = []
            deadline = time.monotonic() + timeout_seconds
            while True:
                positions = {tp: await consumer.position(tp) for tp in tps}
                if all(positions[tp] >= ends[tp] for tp in tps):
                    break
                assert time.monotonic() < deadline, f"could not read {key} to its end"
                batches = await consumer.getmany(timeout_ms=200, max_records=5000)
                for msgs in batches.values():
                    out.extend(m for m in msgs if m.offset < ends[TopicPartition(m.topic, m.partition)])
            return out
        finally:
            await consumer.stop()


@pytest.fixture()
async def pipe(kafka_bootstrap: str, database_url: str, topic_prefix: str, tmp_path: Path
               ) -> AsyncIterator[Pipeline]:
    """A prepared pipeline (topics created, database migrated, 2 partitions); workers stopped after."""
    p = Pipeline(kafka_bootstrap, database_url, topic_prefix, tmp_path)
    await p.prepare()
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture()
async def pipe4(kafka_bootstrap: str, database_url: str, topic_prefix: str, tmp_path: Path
                ) -> AsyncIterator[Pipeline]:
    """The same with 4 partitions, for tests that share them between workers."""
    p = Pipeline(kafka_bootstrap, database_url, topic_prefix, tmp_path, partitions=4)
    await p.prepare()
    try:
        yield p
    finally:
        p.stop()
