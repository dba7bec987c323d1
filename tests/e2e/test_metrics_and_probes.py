"""The worker's /metrics tell the truth about a run, and its probes answer as documented.

A worker on the real broker and PostgreSQL handles a known mix (structured events that post,
free-text lines that go to review, undecodable bytes, exact redeliveries); then /metrics is
scraped and every figure compared with what the outcome topics and the ledger say happened.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipeline.devtools import services
from tests.e2e import harness
from tests.e2e.harness import Pipeline, encode, org_ids, structured_events

pytestmark = [pytest.mark.e2e]
pipe = harness.pipe  # fixture

POSTED = 240
OVER_LIMIT = 20  # one organisation sends its burst (100) and 20 more: some parked (how many depends on how
# fast the worker takes them: its quota refills at 100/min), re-admitted, posted
REVIEW = 12
UNDECODABLE = 7
REDELIVERED = 5


def get(port: int, path: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            body = resp.read().decode()
            return resp.status, (body if path == "/metrics" else json.loads(body))
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read().decode() or "null")


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics by (name, sorted labels)."""
    status, text = get(port, "/metrics")
    assert status == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict[Any, float], metric: str, **labels: str) -> float:
    return samples.get((metric, tuple(sorted(labels.items()))), 0.0)


def total(samples: dict[Any, float], name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


async def wait_until(check: Any, timeout_seconds: float, what: str) -> None:
    deadline = time.monotonic() + timeout_seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.5)


def review_lines(n: int, org: str) -> list[bytes]:
    """Bank-feed lines nothing recognises: suspense, which never auto-posts (review)."""
    return [encode({"schema_version": 1, "event_id": f"rev-{i}", "organization_id": org, "source": "bank_feed",
                    "occurred_at": "2026-11-02T10:00:00Z", "amount": "12.34", "currency": "USD",
                    "direction": "debit", "description": f"QZXV {i:04d} KRPLM WBX"}) for i in range(n)]


@pytest.mark.timeout(240)
async def test_metrics_match_the_run_and_probes_answer(pipe: Pipeline) -> None:
    port = services.free_port()
    worker = pipe.start_worker("w-metrics", HERA_METRICS_PORT=str(port), HERA_LOG_FORMAT="json")
    events = structured_events(POSTED, seed="metrics", orgs=org_ids(4, "metrics"))
    reviews = review_lines(REVIEW, org_ids(1, "metrics-review")[0])
    junk = [b"\xff not json %d" % i for i in range(UNDECODABLE)]
    burst = structured_events(100 + OVER_LIMIT, seed="metrics-burst", orgs=org_ids(1, "metrics-burst"))
    await pipe.produce(events + reviews + junk + burst, by_org=True)
    tracker = await pipe.wait_accounted(POSTED + REVIEW + UNDECODABLE + len(burst), 120, watch=[worker])
    await pipe.produce(events[:REDELIVERED], by_org=True)  # exact redeliveries: absorbed as duplicates
    tracker = await pipe.wait_accounted(POSTED + REVIEW + UNDECODABLE + len(burst) + REDELIVERED, 60, watch=[worker])
    counts = tracker.counts()
    assert counts["review"] == REVIEW, counts  # the mix did what it was meant to

    expected = {"posted": POSTED + len(burst), "review": REVIEW, "rejected": UNDECODABLE, "duplicate": REDELIVERED}
    assert {k: counts[k] for k in expected} == expected, counts
    await wait_until(lambda: all(value(scrape(port), "hera_events_total", outcome=k) == n
                                 for k, n in expected.items()), 30, "the outcome counters")
    await wait_until(lambda: value(scrape(port), "hera_review_queue_depth") == REVIEW, 40, "the review backlog gauge")
    m = scrape(port)
    assert total(m, "hera_events_total") == sum(expected.values()), "an event counted more than once"
    ledger = await pipe.ledger()
    assert value(m, "hera_entries_posted_total") == ledger["entries"] == expected["posted"]
    assert total(m, "hera_dead_letters_total") == UNDECODABLE
    assert sum(v for (n, labels), v in m.items() if n == "hera_dead_letters_total"
               and ("reason", "ENCODING_INVALID") in labels) == UNDECODABLE
    assert value(m, "hera_event_latency_seconds_count") == expected["posted"]
    assert 0 < value(m, "hera_event_latency_seconds_sum") < expected["posted"] * 120
    assert 0 < value(m, "hera_events_deferred_total") == len(tracker.parked)  # parked once each, posted once
    assert value(m, "hera_review_oldest_age_seconds") > 0
    assert total(m, "hera_batch_size_sum") >= sum(expected.values())
    assert total(m, "hera_batch_duration_seconds_count") > 0
    assert value(m, "hera_circuit_breaker_state", name="database") == 0
    assert value(m, "hera_worker_started_timestamp_seconds") > 0
    raw = pipe.settings.topic("raw")
    await wait_until(lambda: {labels for (n, labels), _ in scrape(port).items() if n == "hera_consumer_lag_messages"
                              and ("topic", raw) in labels} == {(("partition", str(p)), ("topic", raw))
                                                                for p in range(pipe.partitions)},
                     20, "a lag gauge per raw partition")
    await wait_until(lambda: total({k: v for k, v in scrape(port).items() if ("topic", raw) in k[1]},
                                   "hera_consumer_lag_messages") == 0, 20, "the raw topic's lag to drain")
    committed = {labels: v for (n, labels), v in scrape(port).items()
                 if n == "hera_consumer_committed_offset" and ("topic", raw) in labels}
    assert sum(committed.values()) == sum(expected.values())  # every raw record, redeliveries included

    for path in ("/livez", "/readyz", "/startupz"):
        status, body = get(port, path)
        assert (status, body["status"]) == (200, "ok"), (path, body)
    status, body = get(port, "/readyz")
    assert set(body["checks"]) >= {"broker", "database", "table_recovery", "database_breaker"}
    assert get(port, "/healthz")[0] == 404

    pipe.stop()  # HERA_LOG_FORMAT=json: every line of the worker's log is one JSON object, Faust's too
    records = [json.loads(line) for line in (pipe.home / "worker.log").read_text().splitlines() if line.strip()]
    assert any(r["logger"].startswith("faust.") for r in records)
    assert all({"ts", "level", "logger", "msg"} <= set(r) for r in records)
