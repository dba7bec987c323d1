"""``hera`` subcommands beyond services/db: run, demo, simulate, classify, verify, audit, replay, bench.

Registered on ``pipeline.cli.main`` at import. Each is a thin shell over a pipeline module.
"""

from __future__ import annotations

import asyncio

import click

from pipeline.cli.app import bootstrap_of, emit, fail, main, with_conn
from pipeline.config import Settings


@main.command("run")
@click.option("--sample-stream", is_flag=True, help="also produce a live sample stream and show progress")
@click.option("--rate", default=50.0, show_default=True, help="sample events per second")
@click.pass_obj
def run_cmd(settings: Settings, sample_stream: bool, rate: float) -> None:
    """Start the pipeline workers against the configured broker and database."""
    if sample_stream:
        from pipeline.devtools.live import run_with_sample_stream
        run_with_sample_stream(settings, rate=rate)
        return
    from agents.worker import run_worker
    from pipeline.brokers import BrokerConnectionError, TopicLayoutError
    try:
        run_worker(settings)
    except BrokerConnectionError as exc:
        fail(str(exc), 3)
    except TopicLayoutError as exc:
        fail(str(exc), 1)


def refuse_external(settings: Settings, what: str, yes: bool) -> None:
    """``demo`` and ``bench`` write sample organisations and topics: only into embedded services,
    unless the user says ``--yes``."""
    from pipeline.cli.errors import BadUsage
    from pipeline.config import mask_dsn

    external = ([f"Kafka cluster {settings.kafka_bootstrap}"] if settings.kafka_external else []) + \
        ([f"database {mask_dsn(settings.dsn())}"] if settings.database_external else [])
    if external and not yes:
        raise BadUsage(f"{what} would write sample organisations, entries and topics into the external "
                       f"{' and '.join(external)}", "pass --yes to do it anyway, or unset HERA_KAFKA_BOOTSTRAP / "
                       "HERA_DATABASE_URL to run on embedded services")


def with_cleanup(settings: Settings, label: str, keep: bool, run: object) -> dict:
    """Run ``run()``; then delete the topics and consumer groups it created (named
    ``<prefix><label>-<run id>.…``), unless ``keep``. The summary says how many."""
    from pipeline.devtools.live import RUN_PREFIXES, delete_run_names, ensure_services, kafka_names

    ensure_services(settings)
    bootstrap_of(settings)
    before = asyncio.run(kafka_names(settings))
    started = len(RUN_PREFIXES)
    try:
        summary: dict = run()  # type: ignore[operator]
    finally:
        if not keep:
            cleaned = asyncio.run(delete_run_names(settings, RUN_PREFIXES[started:], before))
            click.echo(f"hera: deleted {cleaned['topics_deleted']} topics and {cleaned['groups_deleted']} "
                       f"consumer groups of this {label}", err=True)
    summary["cleanup"] = "kept" if keep else "deleted"
    return summary


@main.command("demo")
@click.option("--events", "n_events", default=1000, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option("--timeout", "timeout_seconds", default=300.0, show_default=True)
@click.option("--yes", is_flag=True, help="run even against an external database or Kafka cluster")
@click.option("--keep-topics", is_flag=True, help="leave the run's topics and consumer group behind")
@click.pass_obj
def demo_cmd(settings: Settings, n_events: int, timeout_seconds: float, yes: bool, keep_topics: bool) -> None:
    """Produce N realistic mixed events, run the pipeline until all are accounted for, print a summary."""
    from pipeline.cli.errors import CheckFailed
    from pipeline.devtools.live import run_demo

    refuse_external(settings, "demo", yes)
    summary = with_cleanup(settings, "demo", keep_topics,
                           lambda: run_demo(settings, n_events, timeout_seconds=timeout_seconds))
    emit(summary)
    if not summary["all_accounted_for"]:
        raise CheckFailed(f"only {summary['accounted_for']} of {summary['events']} events were accounted for "
                          f"in {timeout_seconds:g} s", f"see {settings.home / 'worker.log'}; raise --timeout")


@main.command("simulate")
@click.argument("file", type=click.File("rb"))
def simulate_cmd(file: click.utils.LazyFile) -> None:
    """Print one JSON object per raw event of FILE (JSONL): outcome, smart code, confidence, lines."""
    from pipeline.classify import Classifier
    from pipeline.domain.catalog import load_catalog
    from pipeline.flow import calibrated_catalog
    from pipeline.simulate import simulate

    classifier = Classifier.load()
    for result in simulate((line for line in file if line.strip()), classifier=classifier,
                           catalog=calibrated_catalog(classifier, load_catalog())):
        emit(result)


# ---------------------------------------------------------------- verify, audit, replay

@main.command("verify")
@click.option("--topics/--no-topics", default=True, show_default=True,
              help="also check invariant 3 on the topics: every raw event accounted for")
@click.pass_obj
def verify_cmd(settings: Settings, topics: bool) -> None:
    """Check the invariants of docs/invariants.md in the database (and the topics); exit 1 on any violation."""
    from pipeline.ledger.verify import verify_ledger
    result: dict = asyncio.run(with_conn(settings, verify_ledger))  # type: ignore[assignment]
    if topics:
        from pipeline.devtools.live import account_for_raw
        bootstrap_of(settings)   # a missing broker is a one-line error, not a traceback
        result["events"] = asyncio.run(account_for_raw(settings))
        result["ok"] = result["ok"] and result["events"]["ok"]
    emit(result)
    if not result["ok"]:
        from pipeline.cli.errors import CheckFailed
        raise CheckFailed("verify found invariant violations (counts in the JSON on stdout)",
                          "docs/invariants.md says what each count means")


@main.group()
def audit() -> None:
    """The hash-chained audit log."""


@audit.command("verify")
@click.option("--org", "org_id", default=None)
@click.pass_obj
def audit_verify_cmd(settings: Settings, org_id: str | None) -> None:
    """Re-walk the audit hash chains; exit 1 if a row was edited, deleted or reordered."""
    from pipeline.ledger.audit import verify_audit
    result = asyncio.run(with_conn(settings, lambda c: verify_audit(c, org_id)))
    emit(result)
    if not result["ok"]:  # type: ignore[index]
        from pipeline.cli.errors import CheckFailed
        raise CheckFailed("the audit chain is broken (details in the JSON on stdout)",
                          "restore the edited rows from a backup; docs/invariants.md, invariant 5")


def _time_ms(value: str | None) -> int | None:
    if value is None:
        return None
    from datetime import datetime
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError as exc:
        raise click.BadParameter(f"not an RFC 3339 time: {value}") from exc


@main.command("replay")
@click.option("--topic", default=None, help="topic to re-feed (default: the raw topic)")
@click.option("--from-offset", type=int, default=None)
@click.option("--to-offset", type=int, default=None, help="exclusive")
@click.option("--from-time", default=None, help="RFC 3339")
@click.option("--to-time", default=None, help="RFC 3339, exclusive")
@click.option("--org", "org_id", default=None, help="only this organisation's events")
@click.pass_obj
def replay_cmd(settings: Settings, topic: str | None, from_offset: int | None, to_offset: int | None,
               from_time: str | None, to_time: str | None, org_id: str | None) -> None:
    """Re-feed a topic range into the pipeline (idempotent: nothing posted twice)."""
    from pipeline.replay import ReplayRange, replay

    rng = ReplayRange(topic=topic or settings.topic("raw"), from_offset=from_offset, to_offset=to_offset,
                      from_time_ms=_time_ms(from_time), to_time_ms=_time_ms(to_time), org=org_id)
    bootstrap_of(settings)   # a missing broker is a one-line error, not a traceback
    emit(asyncio.run(replay(settings, settings.topic("raw"), rng,
                     progress=lambda n: click.echo(f"\rreplayed {n} records", err=True, nl=False))))


@main.command("bench")
@click.option("--events", "n_events", default=20_000, show_default=True, type=click.IntRange(100, 2_000_000),
              help="flat out: produce N events at once, measure throughput")
@click.option("--rate", type=click.FloatRange(1, 100_000), default=None,
              help="open loop: offer R events/s (with --duration), measure latency")
@click.option("--duration", "duration_seconds", type=click.FloatRange(1, 3600), default=20.0, show_default=True,
              help="seconds of offered load with --rate")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 16),
              help="worker processes sharing the partitions")
@click.option("--yes", is_flag=True, help="run even against an external database or Kafka cluster")
@click.option("--keep-topics", is_flag=True, help="leave the run's topics and consumer group behind")
@click.pass_obj
def bench_cmd(settings: Settings, n_events: int, rate: float | None, duration_seconds: float, workers: int,
              yes: bool, keep_topics: bool) -> None:
    """Load test: end-to-end throughput (flat out) or latency (open loop at --rate), beside the same run's
    raw broker and database limits. Progress on stderr, JSON on stdout."""
    from pipeline.devtools.bench import run_bench, run_rate_bench

    refuse_external(settings, "bench", yes)
    if rate is not None:
        emit(with_cleanup(settings, "bench", keep_topics,
                          lambda: run_rate_bench(settings, rate, duration_seconds, workers=workers)))
    else:
        emit(with_cleanup(settings, "bench", keep_topics,
                          lambda: run_bench(settings, n_events, workers=workers)))


@main.command("classify")
@click.option("--eval", "eval_file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="JSONL of raw events, each with expected_smart_code")
@click.option("--threshold", type=click.FloatRange(0, 1), default=None,
              help="one global auto-post threshold instead of the calibrated per-code ones")
@click.option("--curve", is_flag=True, help="also print the coverage/precision curve over thresholds")
@click.option("--split", default="test", show_default=True,
              help="rows of this split when the file has a split column ('all' for every row)")
@click.option("--learn", is_flag=True,
              help="replay the rows as one organisation's stream, answering reviews with the label; "
                   "auto-post rate and precision per quarter")
def classify_cmd(eval_file: str, threshold: float | None, curve: bool, split: str, learn: bool) -> None:
    """Evaluate the classifier: accuracy, auto-post rate and precision, review rate, per-code table,
    and the precision/coverage curve per source and country, without and with MCC
    (docs: pipeline/classify/report.py; the external set: data/classifier/external/README.md)."""
    from pipeline.classify import Classifier
    from pipeline.classify.evaluate import DictEvent, coverage_curve, evaluate
    from pipeline.classify.report import load_rows, replay, report

    classifier = Classifier.load()
    rows = load_rows(eval_file, split=None if split == "all" else split)
    pairs = [(DictEvent(r), r["expected_smart_code"]) for r in rows]
    result = evaluate(pairs, classifier, classifier.thresholds, threshold_override=threshold)
    if curve:
        results = classifier.classify_batch([e for e, _ in pairs])
        result["curve"] = coverage_curve(results, [x for _, x in pairs])
    result["breakdown"] = report(classifier, rows)
    if learn:
        result["learning"] = replay(classifier, rows)
    emit(result)
