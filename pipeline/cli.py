"""The ``hera`` command. Output meant for programs is JSON on stdout; progress and logs on stderr.

Each command is a thin shell over a module of ``pipeline`` (or ``agents`` for the workers);
imports are lazy so ``hera simulate`` never loads Kafka or PostgreSQL clients.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import click

from pipeline.config import Settings


def emit(obj: Any) -> None:
    """One JSON document on stdout."""
    click.echo(json.dumps(obj, default=str, sort_keys=False))


def fail(message: str, code: int = 1) -> None:
    click.echo(f"hera: {message}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hera-stream")
@click.pass_context
def main(ctx: click.Context) -> None:
    """HERA Stream: raw business transactions in, balanced audited journal entries out."""
    ctx.obj = Settings()


# ---------------------------------------------------------------- services

@main.group()
def services() -> None:
    """Start, stop and inspect the embedded broker and PostgreSQL."""


@services.command("up")
@click.pass_obj
def services_up(settings: Settings) -> None:
    """Start the embedded services that the environment does not point elsewhere."""
    from pipeline import services as svc
    try:
        emit(svc.up(settings))
    except svc.ServiceError as exc:
        fail(str(exc))


@services.command("down")
@click.pass_obj
def services_down(settings: Settings) -> None:
    """Stop the embedded services (external ones are never touched)."""
    from pipeline import services as svc
    emit(svc.down(settings))


@services.command("status")
@click.pass_obj
def services_status(settings: Settings) -> None:
    """Print JSON: kafka_bootstrap, database_url (password masked), running flags."""
    from pipeline import services as svc
    emit(svc.status(settings))


@main.command("config")
@click.pass_obj
def show_config(settings: Settings) -> None:
    """Print the effective settings as JSON (secrets masked)."""
    emit(settings.public_dict())


# ---------------------------------------------------------------- database

@main.group()
def db() -> None:
    """Database schema."""


@db.command("migrate")
@click.pass_obj
def db_migrate(settings: Settings) -> None:
    """Apply the schema migrations (re-runnable)."""
    from pipeline.ledger.migrate import migrate
    applied = asyncio.run(migrate(settings.dsn()))
    emit({"applied": applied})


def register_extra_commands() -> None:
    """Commands that live in their own modules (kept out of this file to keep it readable)."""
    import pipeline.security_cli  # noqa: F401  (deadletter, audit checkpoint, privacy; needs commands' audit group)
    from pipeline import commands  # noqa: F401  (registers on import)


register_extra_commands()
