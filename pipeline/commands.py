"""``hera`` subcommands beyond services/db: run, demo, org, simulate, classify, verify, reports.

Registered on ``pipeline.cli.main`` at import. Each is a thin shell over a pipeline module.
"""

from __future__ import annotations

import asyncio

import click

from pipeline.cli import emit, fail, main
from pipeline.config import Settings


@main.command("run")
@click.option("--sample-stream", is_flag=True, help="also produce a live sample stream and show progress")
@click.option("--rate", default=50.0, show_default=True, help="sample events per second")
@click.pass_obj
def run_cmd(settings: Settings, sample_stream: bool, rate: float) -> None:
    """Start the pipeline workers against the configured broker and database."""
    if sample_stream:
        from pipeline.live import run_with_sample_stream
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


@main.command("demo")
@click.option("--events", "n_events", default=1000, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option("--timeout", "timeout_seconds", default=300.0, show_default=True)
@click.pass_obj
def demo_cmd(settings: Settings, n_events: int, timeout_seconds: float) -> None:
    """Produce N realistic mixed events, run the pipeline until all are accounted for, print a summary."""
    from pipeline.live import run_demo
    summary = run_demo(settings, n_events, timeout_seconds=timeout_seconds)
    emit(summary)
    if not summary["all_accounted_for"]:
        raise SystemExit(1)


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


# ---------------------------------------------------------------- ledger: orgs, reports, exports, verify

async def _with_conn(settings: Settings, fn: object) -> object:
    import asyncpg
    conn = await asyncpg.connect(settings.dsn(), timeout=10)
    try:
        return await fn(conn)  # type: ignore[operator]
    finally:
        await conn.close()


async def _with_store(settings: Settings, fn: object) -> object:
    from pipeline.ledger.store import LedgerStore
    store = await LedgerStore.connect(settings.dsn(), pool_size=2)
    try:
        return await fn(store)  # type: ignore[operator]
    finally:
        await store.close()


def _settings_json(value: str) -> dict[str, object]:
    import json
    try:
        data = json.loads(value)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise click.BadParameter("must be a JSON object")
    return data


@main.group()
def org() -> None:
    """Register organisations and change their settings."""


@org.command("add")
@click.argument("org_id")
@click.option("--name", default=None)
@click.option("--settings", "settings_json", default="{}", help="JSON object: rate limit, thresholds, accounts")
@click.pass_obj
def org_add(settings: Settings, org_id: str, name: str | None, settings_json: str) -> None:
    """Register ORG_ID (a UUID) and seed its chart of accounts."""
    extra = _settings_json(settings_json)
    created = asyncio.run(_with_store(settings, lambda s: s.ensure_organization(org_id, name, settings=extra)))
    emit({"organization_id": org_id, "created": created})


@org.command("list")
@click.pass_obj
def org_list(settings: Settings) -> None:
    """List registered organisations."""
    orgs = asyncio.run(_with_store(settings, lambda s: s.known_organizations()))
    emit({"organizations": sorted(orgs)})  # type: ignore[arg-type]


@org.command("set")
@click.argument("org_id")
@click.option("--settings", "settings_json", default=None, help="JSON object merged into the org's settings")
@click.option("--close-period", multiple=True, help="YYYY-MM to close")
@click.option("--open-period", multiple=True, help="YYYY-MM to reopen")
@click.pass_obj
def org_set(settings: Settings, org_id: str, settings_json: str | None, close_period: tuple[str, ...],
            open_period: tuple[str, ...]) -> None:
    """Change an organisation's settings (rate limit, thresholds, account overrides) and closed periods."""
    async def change(store: object) -> object:
        result = None
        if settings_json is not None:
            result = await store.set_org_settings(org_id, _settings_json(settings_json))  # type: ignore[attr-defined]
        for period in close_period:
            await store.set_period_closed(org_id, period, True)  # type: ignore[attr-defined]
        for period in open_period:
            await store.set_period_closed(org_id, period, False)  # type: ignore[attr-defined]
        return result
    emit({"organization_id": org_id, "settings": asyncio.run(_with_store(settings, change)),
          "closed": list(close_period), "opened": list(open_period)})


@main.group()
def report() -> None:
    """Ledger reports."""


@report.command("trial-balance")
@click.option("--org", "org_id", required=True)
@click.option("--period", default=None, help="YYYY-MM (default: all time)")
@click.pass_obj
def report_trial_balance(settings: Settings, org_id: str, period: str | None) -> None:
    """Trial balance of one organisation, as at the end of a period."""
    from pipeline.ledger.reports import trial_balance
    emit(asyncio.run(_with_conn(settings, lambda c: trial_balance(c, org_id, period))))


@report.command("ledger")
@click.option("--org", "org_id", required=True)
@click.option("--account", required=True)
@click.pass_obj
def report_ledger(settings: Settings, org_id: str, account: str) -> None:
    """Every line posted to one account, with a running balance."""
    from pipeline.ledger.reports import account_ledger
    emit({"organization_id": org_id, "account": account,
          "lines": asyncio.run(_with_conn(settings, lambda c: account_ledger(c, org_id, account)))})


@main.group()
def export() -> None:
    """Export the books."""


@export.command("beancount")
@click.option("--org", "org_id", default=None, help="one organisation (default: all)")
@click.pass_obj
def export_beancount_cmd(settings: Settings, org_id: str | None) -> None:
    """Books in beancount format (bean-check accepts them)."""
    from pipeline.ledger.export_beancount import export_beancount
    click.echo(asyncio.run(_with_conn(settings, lambda c: export_beancount(c, org_id))), nl=False)


@main.command("verify")
@click.option("--topics/--no-topics", default=True, show_default=True,
              help="also check invariant 3 on the topics: every raw event accounted for")
@click.pass_obj
def verify_cmd(settings: Settings, topics: bool) -> None:
    """Check the SPEC §6 invariants in the database (and the topics); exit 1 on any violation."""
    from pipeline.ledger.verify import verify_ledger
    result: dict = asyncio.run(_with_conn(settings, verify_ledger))  # type: ignore[assignment]
    if topics:
        from pipeline.live import account_for_raw
        result["events"] = asyncio.run(account_for_raw(settings))
        result["ok"] = result["ok"] and result["events"]["ok"]
    emit(result)
    if not result["ok"]:
        raise SystemExit(1)


@main.group()
def audit() -> None:
    """The hash-chained audit log."""


@audit.command("verify")
@click.option("--org", "org_id", default=None)
@click.pass_obj
def audit_verify_cmd(settings: Settings, org_id: str | None) -> None:
    """Re-walk the audit hash chains; exit 1 if a row was edited, deleted or reordered."""
    from pipeline.ledger.audit import verify_audit
    result = asyncio.run(_with_conn(settings, lambda c: verify_audit(c, org_id)))
    emit(result)
    if not result["ok"]:  # type: ignore[index]
        raise SystemExit(1)


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
    emit(asyncio.run(replay(settings, settings.topic("raw"), rng,
                     progress=lambda n: click.echo(f"\rreplayed {n} records", err=True, nl=False))))


@main.group()
def review() -> None:
    """The human review queue: list open items, approve or correct them."""


@review.command("list")
@click.option("--org", "org_id", required=True)
@click.option("--limit", default=50, show_default=True)
@click.pass_obj
def review_list(settings: Settings, org_id: str, limit: int) -> None:
    """Open review items of one organisation, oldest first (JSON)."""
    items = asyncio.run(_with_store(settings, lambda s: s.open_reviews(org_id, limit=limit)))
    emit({"organization_id": org_id, "items": [
        {"event_id": i["event_id"], "suggested_smart_code": i["suggested_smart_code"],
         "confidence": i["confidence"], "reason": i["reason"],
         "description": i["payload"].get("event", {}).get("description"),
         "amount": i["payload"].get("event", {}).get("amount"),
         "alternatives": i["payload"].get("classification", {}).get("alternatives")}
        for i in items]})  # type: ignore[union-attr]


@review.command("decide")
@click.option("--org", "org_id", required=True)
@click.option("--event", "event_id", required=True)
@click.option("--approve", is_flag=True, help="accept the suggested smart code")
@click.option("--correct", "smart_code", default=None, help="post with this smart code instead")
@click.option("--reviewer", default=lambda: __import__("getpass").getuser(), show_default="login name")
@click.pass_obj
def review_decide(settings: Settings, org_id: str, event_id: str, approve: bool, smart_code: str | None,
                  reviewer: str) -> None:
    """Send a decision to hera.review.decisions; the pipeline posts it and learns from it."""
    import json

    if approve == (smart_code is not None):
        raise click.UsageError("give exactly one of --approve or --correct CODE")
    decision = {"organization_id": org_id, "event_id": event_id, "reviewer": reviewer,
                "decision": "approve" if approve else "correct", "smart_code": smart_code}

    async def send() -> None:
        from aiokafka import AIOKafkaProducer

        from pipeline.brokers import client_kwargs
        producer = AIOKafkaProducer(**client_kwargs(settings))
        await producer.start()
        try:
            await producer.send_and_wait(settings.topic("decisions"), json.dumps(decision).encode(),
                                         key=org_id.encode())
        finally:
            await producer.stop()

    asyncio.run(send())
    emit({"sent": decision, "topic": settings.topic("decisions")})


@main.command("bench")
@click.option("--events", "n_events", default=20_000, show_default=True, type=click.IntRange(100, 2_000_000))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 16),
              help="worker processes sharing the partitions")
@click.pass_obj
def bench_cmd(settings: Settings, n_events: int, workers: int) -> None:
    """Load test: end-to-end throughput and latency, beside the same run's raw broker and database limits."""
    from pipeline.bench import run_bench
    emit(run_bench(settings, n_events, workers=workers))


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
