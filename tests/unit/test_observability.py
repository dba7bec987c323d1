"""Probes, logs and outcome counting, without a broker or a database."""

from __future__ import annotations

import io
import json
import logging
import urllib.error
import urllib.request
from typing import Any

import pytest
from prometheus_client import REGISTRY

from pipeline.observability import logs, metrics
from pipeline.observability.health import Health, serve


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def get(port: int, path: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            body = resp.read().decode()
            return resp.status, body if path == "/metrics" else json.loads(body)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read().decode())


@pytest.fixture()
def server() -> Any:
    health = Health(heartbeat_stale_seconds=60)
    srv = serve(health, 0)
    yield health, srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def test_probes_say_what_failed_and_answer_404_elsewhere(server: Any) -> None:
    health, port = server
    assert get(port, "/startupz")[0] == 503
    status, body = get(port, "/readyz")
    assert status == 503 and body["checks"]["started"] == {"ok": False, "detail": "starting"}
    health.mark_started()
    health.add_readiness_check("database", lambda: "ConnectionRefusedError")
    health.add_readiness_check("broker", lambda: None)

    async def recovery() -> bool:
        return True

    health.add_readiness_check("table_recovery", recovery)
    status, body = get(port, "/readyz")
    assert status == 503 and body["status"] == "fail"
    assert body["checks"]["database"] == {"ok": False, "detail": "ConnectionRefusedError"}
    assert body["checks"]["broker"] == body["checks"]["table_recovery"] == {"ok": True}
    health.add_readiness_check("database", lambda: None)
    assert get(port, "/readyz") == (200, {"status": "ok", "checks": {"database": {"ok": True}, "broker": {"ok": True},
                                                                      "table_recovery": {"ok": True}}})
    assert get(port, "/startupz")[0] == 200
    assert get(port, "/livez")[0] == 200
    health.last_beat -= 120  # the worker's loop has not turned for two minutes
    status, body = get(port, "/livez")
    assert status == 503 and not body["checks"]["event_loop"]["ok"]
    assert get(port, "/healthz")[0] == 404
    status, text = get(port, "/metrics")
    assert status == 200 and "hera_events_total" in text


def test_a_raising_check_fails_readiness_with_its_error(server: Any) -> None:
    health, port = server
    health.mark_started()

    def boom() -> None:
        raise OSError("no route to host")

    health.add_readiness_check("broker", boom)
    status, body = get(port, "/readyz")
    assert status == 503 and body["checks"]["broker"]["detail"] == "OSError: no route to host"


def test_each_event_is_counted_once_at_its_final_outcome() -> None:
    before = {k: sample("hera_events_total", outcome=k) for k in ("posted", "review", "rejected")}
    dl_before = sample("hera_dead_letters_total", reason="SCHEMA_INVALID")
    deferred_before = sample("hera_events_deferred_total")
    # a direct-path batch: interim steps (validated, classified) and final outcomes in one result
    metrics.record_outcomes("validate", {"validated": 10, "classified": 7, "posted": 7, "review": 2, "rejected": 1,
                                         "deferred": 3},
                            {"SCHEMA_INVALID": 1, "LOW_CONFIDENCE": 2})
    metrics.record_outcomes("review", {"posted": 4}, {})  # reviewer decisions are not events
    assert sample("hera_events_total", outcome="posted") - before["posted"] == 7
    assert sample("hera_events_total", outcome="review") - before["review"] == 2
    assert sample("hera_events_total", outcome="rejected") - before["rejected"] == 1
    assert sample("hera_dead_letters_total", reason="SCHEMA_INVALID") - dl_before == 1
    assert sample("hera_dead_letters_total", reason="LOW_CONFIDENCE") == 0  # a review reason
    assert sample("hera_events_deferred_total") - deferred_before == 3
    assert sample("hera_review_decisions_total", outcome="posted") >= 4


def test_lag_gauges_follow_the_assignment() -> None:
    metrics.set_consumer_lag({("t.raw", 0): (5, 100), ("t.raw", 1): (0, 7)})
    assert sample("hera_consumer_lag_messages", topic="t.raw", partition="0") == 5
    metrics.set_consumer_lag({("t.raw", 1): (2, 9)})  # partition 0 went to another worker
    assert REGISTRY.get_sample_value("hera_consumer_lag_messages", {"topic": "t.raw", "partition": "0"}) is None
    assert sample("hera_consumer_committed_offset", topic="t.raw", partition="1") == 9


def test_masking_hides_card_numbers_url_passwords_and_secrets() -> None:
    text = ("card 4111 1111 1111 1111, 5500-0000-0000-0004 and ref 1234567890123 "
            "postgresql://hera:s3cr3t-pw@db:5432/hera password=hunter22 sasl token: abc.def audit-key-value-xyz")
    masked = logs.mask(text, secrets=["audit-key-value-xyz"])
    for secret in ("4111 1111 1111 1111", "5500-0000-0000-0004", "s3cr3t-pw", "hunter22", "abc.def",
                   "audit-key-value-xyz"):
        assert secret not in masked
    assert "1234567890123" in masked  # not a card number (fails the Luhn check): kept
    assert "postgresql://hera:***@db:5432/hera" in masked


def test_json_logs_one_object_per_line_with_context_and_nothing_secret() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        logs.configure("json", "info", secrets=["topsecret-audit-key"], stream=stream)
        log = logging.getLogger("faust.transport")  # anyone's logger: Faust's too
        with logs.log_context(stage="post", org="org-1"):
            log.warning("failed for %s with key %s", "4111111111111111", "topsecret-audit-key", extra={"event_id": "e-9"})
        try:
            raise ValueError("dsn postgresql://u:pw123@h/db")
        except ValueError:
            logging.getLogger("hera.agents").exception("batch failed")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["logger"] == "faust.transport" and first["level"] == "warning"
    assert (first["stage"], first["org"], first["event_id"]) == ("post", "org-1", "e-9")
    assert "4111111111111111" not in lines[0] and "topsecret-audit-key" not in lines[0]
    assert "[PAN]" in first["msg"]
    assert "pw123" not in lines[1] and "ValueError" in second["exc"]
    assert "stage" not in second  # the bound context ended with its block


def test_batch_histogram_bins_like_prometheus() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    hist = metrics.BatchHistogram("t_latency_seconds", "test", (0.1, 1, 10), registry=registry)
    hist.observe_many([0.05, 0.1, 0.5, 1, 7, 42])  # a value equal to a bound falls in it ("le")
    hist.observe_many([])
    got = {s.labels.get("le", s.name): s.value for fam in registry.collect() for s in fam.samples}
    assert got == {"0.1": 2, "1.0": 4, "10.0": 5, "+Inf": 6, "t_latency_seconds_count": 6,
                   "t_latency_seconds_sum": pytest.approx(50.65)}
    assert b"t_latency_seconds_bucket" in generate_latest(registry)


def test_a_poison_record_is_logged_with_its_organisation_and_event(caplog: pytest.LogCaptureFixture) -> None:
    import asyncio

    from agents import failure
    from agents.handlers.events import envelope_letter
    from pipeline.envelopes import Origin, ValidatedEnvelope

    envelope = ValidatedEnvelope({"organization_id": "org-7", "event_id": "evt-42"}, "fp", Origin("raw", 0, 5))

    async def fn(items: list[Any]) -> Any:
        raise ValueError("a bug")

    with caplog.at_level(logging.ERROR, logger="hera.agents"):
        asyncio.run(failure.isolate("classify", [envelope], fn, envelope_letter))
    [record] = [r for r in caplog.records if "POISON" in r.getMessage()]
    assert (record.org, record.event_id) == ("org-7", "evt-42")  # type: ignore[attr-defined]
    assert json.loads(logs.JsonFormatter().format(record))["event_id"] == "evt-42"


def test_back_pressure_pauses_all_assigned_and_resumes_only_what_it_paused() -> None:
    from agents.observe import hold_partitions

    calls: list[tuple[str, set[str]]] = []
    pause = lambda tps: calls.append(("pause", set(tps)))  # noqa: E731
    resume = lambda tps: calls.append(("resume", set(tps)))  # noqa: E731
    hold_partitions(True, {"a", "b"}, set(), pause, resume)
    hold_partitions(True, {"a", "b", "c"}, {"a", "b"}, pause, resume)  # "c" assigned by a rebalance
    hold_partitions(True, {"a", "b", "c"}, {"a", "b", "c"}, pause, resume)  # nothing new: no call
    hold_partitions(False, {"a", "c"}, {"a", "b", "c"}, pause, resume)  # "b" revoked meanwhile
    hold_partitions(False, {"a", "c"}, set(), pause, resume)
    assert calls == [("pause", {"a", "b"}), ("pause", {"c"}), ("resume", {"a", "c"})]
