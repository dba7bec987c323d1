"""Faust worker benchmark (not a test): CPU per event of a Faust worker process that consumes pre-filled
events (~700-byte JSON values, 4 partitions) with our agent loop (``take_events(500, within=0.2)``,
an extra reference per message, ack after the batch; concurrency 1), the app built by
``agents.app.create_app``, in four configurations:

    a_consume_shipped   HERA_FAUST_SPEEDUPS=0, consume only
    b_consume           speed-ups on (agents/faust_speedups.py), consume only
    c_produce_send      speed-ups on, one message per event via ``app.producer.send``, gathered per batch
    d_produce_outbox    speed-ups on, the same messages via ``agents.outbox.produce_all``

    .venv/bin/python benchmarks/faust_bench.py [--bootstrap HOST:PORT] [--events 50000] [--repeat 3]

CPU per event = (worker CPU for N events − worker CPU for a small run) / (N − small), the CPU
(os.times(), all threads) read by the worker when it has consumed its last event; the small run
takes out start-up. Every run gets fresh topics (created with 4 partitions before the worker starts)
and a fresh group; afterwards the group's committed offsets must reach the end of every partition
(``committed_ok``) and, when producing, the output topic must hold one message per event
(``produced_ok``). Without ``--bootstrap`` a throwaway Tansu broker is started and stopped. Prints one
JSON object on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.brokers import delete_topics, ensure_topics
from pipeline.devtools import services

PARTITIONS = 4
VALUE_BYTES = 700
CONFIGS = {  # name: (HERA_FAUST_SPEEDUPS, how each event's output message is produced)
    "a_consume_shipped": ("0", None),
    "b_consume": ("1", None),
    "c_produce_send": ("1", "send"),
    "d_produce_outbox": ("1", "outbox"),
}


def value(i: int) -> bytes:
    body = {"event_id": f"evt-{i:09d}", "organization_id": str(uuid.UUID(int=i % 64)),
            "amount": f"{10 + i % 9000}.{i % 100:02d}", "currency": "USD", "occurred_at": "2026-11-28T12:00:00Z",
            "description": f"MERCHANT {i % 500} CARD PURCHASE", "source": "bank_feed", "memo": ""}
    body["memo"] = "x" * (VALUE_BYTES - len(json.dumps(body)))
    return json.dumps(body).encode()


# ---------------------------------------------------------------- the worker process

def worker_main(spec: dict) -> None:
    from faust.worker import Worker

    from agents import faust_speedups
    from agents.app import create_app
    from agents.outbox import Message, produce_all
    from pipeline.config import Settings

    settings = Settings(home=spec["home"], kafka_bootstrap=spec["bootstrap"], app_id=spec["group"],
                        topic_prefix="", partitions=PARTITIONS, worker_id="bench", web_port=None,
                        metrics_port=None)
    app = create_app(settings, register_agents=False)  # installs the speed-ups unless HERA_FAUST_SPEEDUPS=0
    out, target, produce = spec["out_topic"], spec["events"], spec["produce"]

    async def agent(stream):  # the loop of agents/stages.py, minus the work
        count, send = 0, app.producer.send
        async for events in stream.take_events(500, within=0.2):
            for e in events:
                e.message.incref()
            if produce == "send":
                futures = [await send(out, e.message.key, e.message.value, None, None, None) for e in events]
                await asyncio.gather(*futures)
            elif produce == "outbox":
                await produce_all(app.producer._ensure_producer(),
                                  [Message(out, None, e.message.key, e.message.value) for e in events])
            for e in events:
                e.ack()
            count += len(events)
            if count >= target and not os.path.exists(spec["result"]):
                t = os.times()
                Path(spec["result"]).write_text(json.dumps(
                    {"cpu": t.user + t.system, "count": count, "speedups": faust_speedups._installed}))

    app.agent(app.topic(spec["topic"], key_type=bytes, value_type=bytes), name="bench", concurrency=1)(agent)
    gc.collect()  # as agents/worker.py does before starting the worker
    gc.freeze()
    Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False, override_logging=True
           ).execute_from_commandline()


# ---------------------------------------------------------------- the driver

async def prefill(bootstrap: str, topic: str, out_topic: str, n: int) -> list[int]:
    """Create both topics (4 partitions) and produce ``n`` events round-robin; returns per-partition counts."""
    for name in (topic, out_topic):
        await ensure_topics(bootstrap, [name], partitions=PARTITIONS)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        counts, futures = [0] * PARTITIONS, []
        for p in range(PARTITIONS):
            ids = range(p, n, PARTITIONS)
            counts[p], k = len(ids), 0
            while k < len(ids):
                batch = producer.create_batch()
                while k < len(ids) and batch.append(key=b"org-%02d" % (ids[k] % 64), value=value(ids[k]),
                                                    timestamp=None) is not None:
                    k += 1
                futures.append(await producer.send_batch(batch, topic, partition=p))
        await asyncio.gather(*futures)
        return counts
    finally:
        await producer.stop()


async def offsets(bootstrap: str, group: str, topic: str, out_topic: str) -> tuple[list[int], int]:
    """The group's committed offsets on ``topic`` and the number of messages in ``out_topic``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        committed = [await consumer.committed(TopicPartition(topic, p)) or 0 for p in range(PARTITIONS)]
        ends = await consumer.end_offsets([TopicPartition(out_topic, p) for p in range(PARTITIONS)])
        return committed, sum(ends.values())
    finally:
        await consumer.stop()


def run_once(bootstrap: str, home: Path, config: str, n: int) -> dict:
    """One worker process consuming ``n`` fresh events; its CPU and whether everything was committed."""
    speedups, produce = CONFIGS[config]
    tag = uuid.uuid4().hex[:8]
    topic, out_topic, group = f"fbench-in-{tag}", f"fbench-out-{tag}", f"fbench-{tag}"
    counts = asyncio.run(prefill(bootstrap, topic, out_topic, n))
    spec = {"home": str(home), "bootstrap": bootstrap, "group": group, "topic": topic, "out_topic": out_topic,
            "events": n, "produce": produce, "result": str(home / f"result-{tag}.json")}
    log = home / f"worker-{tag}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, __file__, "--worker", json.dumps(spec)], cwd=home,
                                env={**os.environ, "HERA_FAUST_SPEEDUPS": speedups},
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not os.path.exists(spec["result"]):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{config}: worker exited ({proc.returncode}) or timed out; "
                                 f"{log}:\n{services.tail(log)}")
            time.sleep(0.05)
        time.sleep(0.05)
        result = json.loads(Path(spec["result"]).read_text())
        deadline = time.monotonic() + 20  # offsets are committed every second
        while True:
            committed, produced = asyncio.run(offsets(bootstrap, group, topic, out_topic))
            done = committed == counts and (produce is None or produced == n)
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        services.terminate(proc.pid)
        proc.wait()
    asyncio.run(delete_topics(bootstrap, [topic, out_topic]))
    if result["speedups"] != (speedups == "1"):
        raise SystemExit(f"{config}: speed-ups installed={result['speedups']}, expected {speedups == '1'}")
    return {"cpu": result["cpu"], "count": result["count"], "committed_ok": committed == counts,
            "produced_ok": produce is None or produced == n}


def run(bootstrap: str, home: Path, n: int, small: int, repeat: int) -> dict:
    per_event: dict[str, list[float]] = {c: [] for c in CONFIGS}
    ok = {c: {"committed_ok": True, "produced_ok": True} for c in CONFIGS}
    for r in range(repeat):
        for config in CONFIGS:  # configurations interleaved: drift on a shared machine hits them alike
            big, little = run_once(bootstrap, home, config, n), run_once(bootstrap, home, config, small)
            us = (big["cpu"] - little["cpu"]) / (big["count"] - little["count"]) * 1e6
            per_event[config].append(round(us, 1))
            for key in ("committed_ok", "produced_ok"):
                ok[config][key] = ok[config][key] and big[key] and little[key]
            print(f"[{r + 1}/{repeat}] {config}: {us:.1f} µs/event (CPU {big['cpu']:.2f} s for {big['count']}, "
                  f"{little['cpu']:.2f} s for {little['count']}; committed_ok={ok[config]['committed_ok']})",
                  file=sys.stderr)
    configs = {c: {"us_per_event_median": statistics.median(v), "us_per_event_min": min(v), "runs_us": v,
                   **ok[c]} for c, v in per_event.items()}
    return {"events": n, "small_events": small, "partitions": PARTITIONS, "value_bytes": len(value(0)),
            "take_events": [500, 0.2], "repeat": repeat, "cpus": os.cpu_count(), "configs": configs,
            "committed_ok": all(c["committed_ok"] for c in configs.values()),
            "produced_ok": all(c["produced_ok"] for c in configs.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", help="HOST:PORT of an existing broker (a throwaway Tansu is started if absent)")
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--small", type=int, default=2_000, help="events of the start-up run subtracted")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: run the worker process
    args = parser.parse_args()
    if args.worker:
        worker_main(json.loads(args.worker))
        return
    if args.events <= args.small:
        parser.error("--events must exceed --small")
    home = Path(tempfile.mkdtemp(prefix="hera-fbench-"))
    broker = None
    try:
        if args.bootstrap is None:
            broker = services.start_broker(home, services.free_port())
            print(f"Tansu broker on {broker.bootstrap} (pid {broker.pid})", file=sys.stderr)
        report = run(args.bootstrap or broker.bootstrap, home, args.events, args.small, args.repeat)
        report["broker"] = args.bootstrap or "tansu (throwaway, memory storage)"
        print(json.dumps(report, indent=2))
    finally:
        if broker is not None:
            services.terminate(broker.pid)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
