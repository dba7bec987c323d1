"""``hera`` subcommands beyond services/db: run, demo, org, simulate, classify, verify, reports.

Registered on ``pipeline.cli.main`` at import. Each is a thin shell over a pipeline module.
"""

from __future__ import annotations

import click

from pipeline.cli import emit, main
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
    run_worker(settings)


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
    from pipeline.simulate import simulate

    for result in simulate((line for line in file if line.strip()), classifier=Classifier.load(),
                           catalog=load_catalog()):
        emit(result)
