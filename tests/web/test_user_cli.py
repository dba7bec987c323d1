"""``hera user …`` on a real PostgreSQL: add (one-time password), grant, list, disable, token, bootstrap."""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner

from pipeline.cli.app import main
from pipeline.ledger.migrate import migrate
from tests.web.support import org_id, seed_orgs

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
ORG = org_id("cli")


def test_user_commands(database_url: str, tmp_path: object) -> None:
    asyncio.run(migrate(database_url))
    asyncio.run(seed_orgs(database_url, {"Cli Org": ORG}))
    env = {"HERA_DATABASE_URL": database_url, "HERA_HOME": str(tmp_path)}
    runner = CliRunner()

    def hera(*args: str) -> dict[str, object]:
        result = runner.invoke(main, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    added = hera("user", "add", "ana", "--display-name", "Ana <b>")
    assert len(str(added["one_time_password"])) >= 12
    assert hera("user", "grant", "ana", ORG, "reviewer") == {"username": "ana", "organization_id": ORG, "role": "reviewer"}
    [ana] = hera("user", "list")["users"]  # type: ignore[misc]
    assert ana["grants"] == [{"organization_id": ORG, "role": "reviewer"}] and ana["status"] == "active"
    assert hera("user", "disable", "ana")["status"] == "disabled"
    assert str(hera("user", "token", "ana", "--name", "ci")["token"]).startswith("hera_")
    first = hera("user", "bootstrap")
    assert first["username"] == "admin" and first["one_time_password"]
    for bad in (["user", "grant", "ana", "not-a-uuid", "reviewer"], ["user", "grant", "ana", org_id("none"), "reviewer"],
                ["user", "add", "Bad Name!"], ["user", "disable", "nobody"], ["user", "add", "ana"]):
        result = runner.invoke(main, bad, env=env)
        assert result.exit_code != 0 and "hera:" in result.output, (bad, result.output)
    result = runner.invoke(main, ["user", "grant", "ana", ORG, "owner"], env=env)
    assert result.exit_code == 2  # not a role
