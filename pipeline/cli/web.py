"""``hera web`` (the review workspace) and ``hera user …`` (its users and their roles).

Registered on ``pipeline.cli.main`` at import. JSON on stdout; a password appears once, in the
output of the command that made it (``user add`` without ``--password-stdin``, ``user bootstrap``).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import click

from pipeline.cli.app import emit, fail, main
from pipeline.config import Settings

T = TypeVar("T")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


@main.command("web")
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="address to listen on")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(1, 65535))
@click.pass_obj
def web_cmd(settings: Settings, host: str, port: int) -> None:
    """Serve the review workspace (sign-in, review queue, books, JSON API at /api/v1, /docs)."""
    import uvicorn

    from pipeline.web.app import create_app

    click.echo(f"hera web: http://{host}:{port}/ (API docs at /docs)", err=True)
    uvicorn.run(create_app(settings), host=host, port=port, log_level=settings.log_level, access_log=False)


@main.group("user")
def user_group() -> None:
    """Users of the review workspace and their roles per organisation."""


def _run(settings: Settings, fn: Callable[[Any], Awaitable[T]]) -> T:
    import asyncpg

    from pipeline.web.identity import IdentityError

    async def go() -> T:
        conn = await asyncpg.connect(settings.dsn(), timeout=10)
        try:
            async with conn.transaction():
                return await fn(conn)
        finally:
            await conn.close()

    try:
        return asyncio.run(go())
    except IdentityError as exc:
        fail(str(exc))
        raise  # unreachable: fail exits


@user_group.command("add")
@click.argument("username")
@click.option("--display-name", default="", help="shown in the workspace")
@click.option("--password-stdin", is_flag=True, help="read the password from stdin (else a one-time one is made)")
@click.option("--platform-admin", is_flag=True, help="admin of every organisation")
@click.pass_obj
def user_add(settings: Settings, username: str, display_name: str, password_stdin: bool, platform_admin: bool) -> None:
    """Add a user; without --password-stdin, print a one-time password to replace at first sign-in."""
    from pipeline.web import identity

    password = sys.stdin.readline().rstrip("\n") if password_stdin else identity.new_password()
    user = _run(settings, lambda c: identity.add_user(c, username, password, display_name=display_name,
                                                      platform_admin=platform_admin,
                                                      must_change_password=not password_stdin))
    emit({"username": user.username, "id": user.id, "platform_admin": user.platform_admin,
          **({} if password_stdin else {"one_time_password": password})})


@user_group.command("list")
@click.pass_obj
def user_list(settings: Settings) -> None:
    """Every user with status, lock and grants (JSON)."""
    from pipeline.web import identity
    emit({"users": _run(settings, identity.list_users)})


@user_group.command("disable")
@click.argument("username")
@click.pass_obj
def user_disable(settings: Settings, username: str) -> None:
    """Disable a user: sessions end at once, sign-in and API tokens stop working."""
    _set_status(settings, username, "disabled")


@user_group.command("enable")
@click.argument("username")
@click.pass_obj
def user_enable(settings: Settings, username: str) -> None:
    """Enable a disabled user again."""
    _set_status(settings, username, "active")


def _set_status(settings: Settings, username: str, status: str) -> None:
    from pipeline.web import identity
    _run(settings, lambda c: identity.set_status(c, username, status))
    emit({"username": username, "status": status})


@user_group.command("grant")
@click.argument("username")
@click.argument("org")
@click.argument("role", type=click.Choice(["reviewer", "approver", "auditor", "admin"]))
@click.pass_obj
def user_grant(settings: Settings, username: str, org: str, role: str) -> None:
    """Give USERNAME the ROLE on organisation ORG (a UUID of a registered organisation)."""
    import getpass

    from pipeline.web import identity
    _run(settings, lambda c: identity.grant(c, username, org, role, granted_by=f"cli:{getpass.getuser()}"))
    emit({"username": username, "organization_id": org, "role": role})


@user_group.command("token")
@click.argument("username")
@click.option("--name", required=True, help="what the token is for")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 366))
@click.pass_obj
def user_token(settings: Settings, username: str, name: str, days: int) -> None:
    """Make an API token (Authorization: Bearer …) for USERNAME; printed once."""
    from pipeline.web import identity
    token = _run(settings, lambda c: identity.create_api_token(c, username, name, timedelta(days=days)))
    emit({"username": username, "name": name, "token": token, "expires_in_days": days})


@user_group.command("bootstrap")
@click.option("--url", default=f"http://{DEFAULT_HOST}:{DEFAULT_PORT}/", show_default=True,
              help="the workspace's address, to print")
@click.pass_obj
def user_bootstrap(settings: Settings, url: str) -> None:
    """Make the first admin (`admin`, admin of every organisation) with a one-time password, and print
    the URL and the password; re-running issues a new one until it has been replaced."""
    from pipeline.ledger.migrate import migrate
    from pipeline.web import identity

    asyncio.run(migrate(settings.dsn()))
    password = _run(settings, identity.bootstrap_admin)
    emit({"url": url, "username": "admin", "one_time_password": password,
          "note": "sign in and choose a password" if password else "admin has already chosen a password"})
    if password:
        click.echo(f"hera web: sign in at {url} as admin with the one-time password {password}", err=True)
