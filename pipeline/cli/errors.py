"""How the ``hera`` command fails: one line on stderr, ``hera: <what failed> — <what to do>``, and an
exit code a script can act on (docs/cli.md, "Exit codes"):

    EXIT_CHECK_FAILED = 1   a check failed (verify, audit verify, demo not accounted for), or the
                            command could not do what was asked (unknown organisation, no outcome)
    EXIT_USAGE        = 2   bad usage: unknown option, malformed UUID/period/JSON, unknown smart code
    EXIT_UNREACHABLE  = 3   a service cannot be reached or used: Kafka or PostgreSQL refused the
                            connection, a wrong DSN or password, a database without migrations

Errors form a small tree::

    CliError (click.ClickException)      what + what to do + exit code
      ├── CheckFailed                     exit 1
      ├── BadUsage                        exit 2
      └── Unreachable                     exit 3

``describe(exc)`` maps anything else (asyncpg and aiokafka errors by class, OS connection errors)
to the same one-line form; ``hera --debug`` shows the traceback instead.
"""

from __future__ import annotations

import os

import click

from pipeline.domain.errors import HeraError

EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
SEP = " — "


class CliError(click.ClickException, HeraError):
    """A failure the user can act on: ``what`` failed, ``todo`` says what to do about it."""

    exit_code = EXIT_CHECK_FAILED

    def __init__(self, what: str, todo: str = "") -> None:
        super().__init__(what + (SEP + todo if todo else ""))
        self.what, self.todo = what, todo

    def line(self) -> str:
        return f"hera: {self.message}"


class CheckFailed(CliError):
    exit_code = EXIT_CHECK_FAILED


class BadUsage(CliError):
    exit_code = EXIT_USAGE


class Unreachable(CliError):
    exit_code = EXIT_UNREACHABLE


def postgres_unreachable(dsn_masked: str, exc: BaseException) -> CliError:
    """The one-line error for a PostgreSQL connection that failed, by the error's class."""
    import asyncpg

    reason = _short(exc)
    if isinstance(exc, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError):
        return Unreachable(f"PostgreSQL at {dsn_masked} refused the login ({reason})",
                           "check the user and password in HERA_DATABASE_URL")
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return Unreachable(f"PostgreSQL at {dsn_masked}: {reason}",
                           "create the database or fix its name in HERA_DATABASE_URL")
    return Unreachable(f"cannot connect to PostgreSQL at {dsn_masked} ({reason})",
                       "start it with `hera services up`, or fix HERA_DATABASE_URL")


def kafka_unreachable(bootstrap: str, exc: BaseException) -> CliError:
    return Unreachable(f"cannot connect to Kafka at {bootstrap} ({_short(exc)})",
                       "start it with `hera services up`, or fix HERA_KAFKA_BOOTSTRAP")


UNMIGRATED_SQLSTATES = frozenset({"42P01", "42883", "42704"})   # undefined table, function, object


def describe(exc: BaseException) -> CliError:
    """Any exception as a one-line ``CliError`` (by class or SQLSTATE, never by message text); a
    wrapped error is described by the first error of its cause chain that says more."""
    for link in _chain(exc):
        if getattr(link, "sqlstate", None) in UNMIGRATED_SQLSTATES:
            return Unreachable(f"the database is not migrated ({_short(link)})", "run `hera db migrate`")
        error = _describe_one(link)
        if error is not None:
            return error
    return CheckFailed(f"{type(exc).__name__}: {_short(exc)}", "run `hera --debug …` to see the traceback")


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and link not in seen and len(seen) < 10:
        seen.append(link)
        link = link.__cause__ or link.__context__
    return seen


def _describe_one(exc: BaseException) -> CliError | None:
    if isinstance(exc, CliError):
        return exc
    try:
        import asyncpg
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        asyncpg = None
    try:
        from aiokafka import errors as kafka_errors
    except ImportError:  # pragma: no cover
        kafka_errors = None
    if asyncpg is not None:
        if isinstance(exc, asyncpg.UndefinedTableError | asyncpg.UndefinedFunctionError
                      | asyncpg.UndefinedObjectError):
            return Unreachable(f"the database is not migrated ({_short(exc)})", "run `hera db migrate`")
        if isinstance(exc, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError
                      | asyncpg.InvalidCatalogNameError | asyncpg.CannotConnectNowError
                      | asyncpg.ConnectionDoesNotExistError):
            return postgres_unreachable("the configured database", exc)
        if isinstance(exc, asyncpg.InsufficientPrivilegeError):
            return CheckFailed(f"PostgreSQL refused: {_short(exc)}",
                               "use the admin (migrating) DSN in HERA_DATABASE_URL")
    if kafka_errors is not None and isinstance(exc, kafka_errors.KafkaConnectionError
                                               | kafka_errors.KafkaTimeoutError | kafka_errors.NoBrokersAvailable):
        return kafka_unreachable(os.environ.get("HERA_KAFKA_BOOTSTRAP", "the embedded broker"), exc)
    from pipeline.brokers import BrokerConnectionError, TopicLayoutError
    from pipeline.ledger.errors import MigrationError, OrganizationUnknownError, TransientError
    if isinstance(exc, BrokerConnectionError):   # its message already names the setting to check
        return Unreachable(_short(exc, 400))
    if isinstance(exc, TopicLayoutError):
        return CheckFailed(_short(exc, 400))
    if isinstance(exc, OrganizationUnknownError):
        return CheckFailed(f"{_short(exc)}", "see `hera org list`, or register it with `hera org add ID`")
    if isinstance(exc, MigrationError):
        return CheckFailed(f"migration refused: {_short(exc)}", "restore the applied migration file")
    if isinstance(exc, TransientError):
        return Unreachable(f"the database kept failing ({_short(exc)})", "check `hera services status` and retry")
    if isinstance(exc, ConnectionError | TimeoutError | OSError):
        return Unreachable(f"a service could not be reached ({_short(exc)})",
                           "check `hera services status`, HERA_KAFKA_BOOTSTRAP and HERA_DATABASE_URL")
    return None


def _short(exc: BaseException, chars_max: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= chars_max else text[: chars_max - 1] + "…"
