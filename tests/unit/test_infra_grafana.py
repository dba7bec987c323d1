"""The Grafana dashboard shows what the issue asks for, and every query names a metric the code exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pipeline.observability.metrics as metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "infra" / "grafana" / "hera-stream.json"
PROMQL_METRIC = re.compile(r"\bhera_[a-z0-9_]+")


def queries() -> dict[str, list[str]]:
    dash = json.loads(DASHBOARD.read_text())
    return {p["title"]: [t["expr"] for t in p["targets"]] for p in dash["panels"]}


def test_every_query_names_an_exported_metric() -> None:
    exported = metrics.exported_names()
    for title, exprs in queries().items():
        assert exprs, f"panel {title!r} has no query"
        for expr in exprs:
            named = set(PROMQL_METRIC.findall(expr))
            assert named or 'up{job="hera-stream"}' in expr, (title, expr)
            assert named <= exported, f"{title!r} names metrics nobody exports: {named - exported}"


def test_the_dashboard_covers_what_operators_watch() -> None:
    exprs = " ".join(e for es in queries().values() for e in es)
    for metric in ("hera_events_total", "hera_entries_posted_total", "hera_event_latency_seconds_bucket",
                   "hera_consumer_lag_messages", "hera_review_queue_depth", "hera_review_oldest_age_seconds",
                   "hera_circuit_breaker_state", "hera_dead_letters_total"):
        assert metric in exprs, f"no panel shows {metric}"
    assert any("Auto-post" in title for title in queries())
