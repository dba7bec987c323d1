"""Operator commands: ``hera prepare`` (what a deployment's migration Job runs once per release:
create the pipeline's topics and migrate the database, so workers started with
``HERA_PREPARE_ON_START=false`` do neither), and ``hera probe PATH`` (ask a running worker's probe
endpoint; exit 0 on 200: a container health check without curl)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import click

from pipeline.cli.app import emit, main
from pipeline.config import Settings

PROBE_TIMEOUT_SECONDS = 3.0


@main.command("prepare")
@click.pass_obj
def prepare_cmd(settings: Settings) -> None:
    """Create the pipeline's topics (with the configured partitions) and apply the migrations."""
    from agents.worker import prepare

    prepare(settings)
    emit({"prepared": True, "topic_prefix": settings.topic_prefix, "partitions": settings.partitions})


@main.command("probe")
@click.argument("path", type=click.Choice(["/livez", "/readyz", "/startupz"]))
@click.pass_obj
def probe_cmd(settings: Settings, path: str) -> None:
    """Ask this machine's worker (HERA_METRICS_PORT) for a probe; print its JSON; exit 1 unless 200."""
    if settings.metrics_port is None:
        raise click.UsageError("HERA_METRICS_PORT is not set: the worker serves no probes")
    host = "127.0.0.1" if settings.metrics_host in ("0.0.0.0", "::") else settings.metrics_host
    try:
        with urllib.request.urlopen(f"http://{host}:{settings.metrics_port}{path}",
                                    timeout=PROBE_TIMEOUT_SECONDS) as resp:
            status, body = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, body = err.code, err.read()
    except OSError as exc:
        emit({"status": "unreachable", "detail": type(exc).__name__})
        raise SystemExit(1) from exc
    emit(json.loads(body))
    if status != 200:
        raise SystemExit(1)
