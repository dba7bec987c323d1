"""The worker refuses a database login that row-level security would not bind, against a real
PostgreSQL: a superuser, a BYPASSRLS role and the owner of a ledger table are refused at start-up
(`hera run` exits non-zero with one line naming HERA_WORKER_DATABASE_URL, no traceback); hera_worker
is accepted, and the embedded path prepares and uses it without any setting."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
from pydantic import SecretStr

from pipeline.config import Settings
from pipeline.ledger.migrate import migrate
from pipeline.ledger.roles import (
    WORKER_ROLE,
    WorkerLoginError,
    check_worker_login,
    set_worker_password,
    with_login,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


async def refusal(dsn: str) -> str | None:
    try:
        await check_worker_login(dsn)
    except WorkerLoginError as exc:
        return str(exc)
    return None


async def test_superuser_bypassrls_and_owner_logins_are_refused(database_url: str) -> None:
    await migrate(database_url)
    password = uuid.uuid4().hex
    await set_worker_password(database_url, password)
    assert await refusal(with_login(database_url, WORKER_ROLE, password)) is None
    assert "is a superuser" in (await refusal(database_url) or "")
    admin = await asyncpg.connect(database_url, timeout=10)
    owner, bypass = f"t_owner_{uuid.uuid4().hex[:8]}", f"t_bypass_{uuid.uuid4().hex[:8]}"
    was = await admin.fetchval("SELECT tableowner FROM pg_tables WHERE tablename = 'privacy_subject_keys'")
    try:
        await admin.execute(f"CREATE ROLE {bypass} LOGIN BYPASSRLS PASSWORD '{password}'")
        await admin.execute(f"CREATE ROLE {owner} LOGIN PASSWORD '{password}'")
        await admin.execute(f"ALTER TABLE privacy_subject_keys OWNER TO {owner}")
        assert "has BYPASSRLS" in (await refusal(with_login(database_url, bypass, password)) or "")
        line = await refusal(with_login(database_url, owner, password)) or ""
        assert "owns the ledger tables (privacy_subject_keys)" in line and "HERA_WORKER_DATABASE_URL" in line
    finally:
        await admin.execute(f'ALTER TABLE privacy_subject_keys OWNER TO "{was}"')
        await admin.execute(f"DROP ROLE IF EXISTS {owner}")
        await admin.execute(f"DROP ROLE IF EXISTS {bypass}")
        await admin.close()


async def test_hera_run_refuses_the_owner_login_in_one_line(database_url: str, kafka_bootstrap: str,
                                                            topic_prefix: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERA_")}
    env.update(HERA_HOME=str(tmp_path), HERA_DATABASE_URL=database_url, HERA_KAFKA_BOOTSTRAP=kafka_bootstrap,
               HERA_TOPIC_PREFIX=topic_prefix, HERA_PARTITIONS="2")
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "pipeline", "run"], env=env,
                                   capture_output=True, text=True, timeout=150)
    err = done.stderr.strip()
    assert done.returncode != 0, done
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert "HERA_WORKER_DATABASE_URL" in err and "is a superuser" in err


async def test_the_embedded_path_prepares_and_uses_hera_worker(database_url: str, kafka_bootstrap: str,
                                                               topic_prefix: str, tmp_path: Path) -> None:
    """As ``hera bench`` runs it: HERA_DATABASE_URL names a database of the embedded server."""
    from agents.worker import prepare, refuse_privileged_login

    port = urlsplit(database_url).port
    (tmp_path / "services.json").write_text(json.dumps({"postgres": {"port": port, "pid": os.getpid()}}))
    settings = Settings(home=tmp_path, database_url=SecretStr(database_url), kafka_bootstrap=kafka_bootstrap,
                        topic_prefix=topic_prefix, partitions=2)
    assert settings.worker_login_embedded
    await asyncio.to_thread(prepare, settings)          # migrates and sets hera_worker's generated password
    await asyncio.to_thread(refuse_privileged_login, settings)   # no SystemExit: the login is hera_worker
    conn = await asyncpg.connect(settings.worker_dsn(), timeout=10)
    try:
        assert await conn.fetchval("SELECT current_user") == WORKER_ROLE
    finally:
        await conn.close()
