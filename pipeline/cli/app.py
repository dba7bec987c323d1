"""The ``hera`` command. Output meant for programs is JSON on stdout; progress and logs on stderr.

Each command is a thin shell over a module of ``pipeline`` (or ``agents`` for the workers);
imports are lazy so ``hera simulate`` never loads Kafka or PostgreSQL clients.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import click

from pipeline.cli.errors import EXIT_USAGE, CliError, describe
from pipeline.config import Settings


def emit(obj: Any) -> None:
    """One JSON document on stdout."""
    click.echo(json.dumps(obj, default=str, sort_keys=False))


def fail(message: str, code: int = 1) -> None:
    click.echo(f"hera: {message}", err=True)
    sys.exit(code)


class HeraGroup(click.Group):
    """The root group: every failure becomes one line on stderr and a documented exit code
    (``pipeline.cli.errors``); ``--debug`` (or ``HERA_DEBUG=1``) shows the traceback instead."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        argv = list(sys.argv[1:] if args is None else args)
        debug = "--debug" in argv or os.environ.get("HERA_DEBUG") == "1"
        if not debug:
            # client libraries log a refused connection (and an unclosed client) through logging's
            # last-resort handler before the error reaches us: the one line below says it instead
            for name in ("aiokafka", "asyncio"):
                logging.getLogger(name).addHandler(logging.NullHandler())
        try:
            result = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            where = f"hera {exc.ctx.command_path.split(' ', 1)[1]} --help" if exc.ctx and " " in \
                exc.ctx.command_path else "hera --help"
            click.echo(f"hera: {exc.format_message()} — see `{where}`", err=True)
            sys.exit(EXIT_USAGE)
        except click.Abort:
            click.echo("hera: aborted", err=True)
            sys.exit(1)
        except CliError as exc:
            if debug:
                traceback.print_exc()
            click.echo(exc.line(), err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"hera: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except (SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:
            if debug:
                traceback.print_exc()
            error = describe(exc)
            click.echo(error.line(), err=True)
            sys.exit(error.exit_code)
        sys.exit(result if isinstance(result, int) else 0)


@click.group(cls=HeraGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hera-stream")
@click.option("--debug", is_flag=True, help="show the traceback of a failure (also HERA_DEBUG=1)")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """HERA Stream: raw business transactions in, balanced audited journal entries out.

    Exit codes: 0 ok, 1 a check failed, 2 bad usage, 3 a service unreachable (docs/cli.md).
    """
    ctx.obj = Settings()


def _configured(address: Callable[[], str], what: str, setting: str) -> str:
    """``address()``, or a one-line error saying that ``what`` is missing and how to get it."""
    try:
        return address()
    except RuntimeError as exc:
        from pipeline.cli.errors import Unreachable
        raise Unreachable(f"no {what} is configured or running",
                          f"run `hera services up`, or set {setting}") from exc


def dsn_of(settings: Settings) -> str:
    """The PostgreSQL DSN, or a one-line error saying how to get one."""
    return _configured(settings.dsn, "PostgreSQL", "HERA_DATABASE_URL")


def bootstrap_of(settings: Settings) -> str:
    """The Kafka bootstrap servers, or a one-line error saying how to get them."""
    return _configured(settings.bootstrap, "Kafka broker", "HERA_KAFKA_BOOTSTRAP")


async def with_conn(settings: Settings, fn: Any) -> Any:
    """``await fn(conn)`` on one admin connection; an unreachable database is a one-line error."""
    import asyncpg

    return await _opened(settings, lambda dsn: asyncpg.connect(dsn, timeout=10), fn)


async def with_store(settings: Settings, fn: Any) -> Any:
    """``await fn(store)`` on a small ``LedgerStore``; an unreachable database is a one-line error."""
    from pipeline.ledger.store import LedgerStore

    return await _opened(settings, lambda dsn: LedgerStore.connect(dsn, pool_size=2), fn)


async def _opened(settings: Settings, open_: Any, fn: Any) -> Any:
    """``await fn(x)`` on ``x = await open_(dsn)``, closed afterwards; a database that cannot be
    reached is ``postgres_unreachable`` (one line, the DSN masked)."""
    import asyncpg

    from pipeline.cli.errors import postgres_unreachable
    from pipeline.config import mask_dsn

    dsn = dsn_of(settings)
    try:
        opened = await open_(dsn)
    except (OSError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise postgres_unreachable(mask_dsn(dsn), exc) from exc
    try:
        return await fn(opened)
    finally:
        await opened.close()


class OrgId(click.ParamType):
    name = "UUID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        import uuid
        try:
            return str(uuid.UUID(str(value)))
        except ValueError:
            self.fail(f"{value!r} is not an organisation id (a UUID)", param, ctx)


ORG_ID = OrgId()


# ---------------------------------------------------------------- services

@main.group()
def services() -> None:
    """Start, stop and inspect the embedded broker and PostgreSQL."""


@services.command("up")
@click.pass_obj
def services_up(settings: Settings) -> None:
    """Start the embedded services that the environment does not point elsewhere."""
    from pipeline.devtools import services as svc
    try:
        emit(svc.up(settings))
    except svc.ServiceError as exc:
        fail(str(exc))


@services.command("down")
@click.pass_obj
def services_down(settings: Settings) -> None:
    """Stop the embedded services (external ones are never touched)."""
    from pipeline.devtools import services as svc
    emit(svc.down(settings))


@services.command("status")
@click.pass_obj
def services_status(settings: Settings) -> None:
    """Print JSON: kafka_bootstrap, database_url (password masked), running flags."""
    from pipeline.devtools import services as svc
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
    applied = asyncio.run(migrate(dsn_of(settings)))
    emit({"applied": applied})


# ---------------------------------------------------------------- contracts

@main.command("schema")
@click.argument("name", required=False, type=click.Choice(["raw", "posted", "review", "decision", "deadletter"]))
def schema_cmd(name: str | None) -> None:
    """JSON Schema (draft 2020-12) of a message; without NAME, the names and versions (docs/contracts.md)."""
    from schemas.messages import SCHEMA_HEADER_VALUES, json_schema
    if name is None:
        emit({n: v.decode() for n, v in SCHEMA_HEADER_VALUES.items()})
        return
    click.echo(json.dumps(json_schema(name), indent=2))
