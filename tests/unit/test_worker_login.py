"""Which login the worker uses (``Settings.worker_dsn``) and which it refuses (``roles.login_refusal``):
on the embedded server it is ``hera_worker`` without any setting, ``hera bench``'s scratch database
included; with an external database and no ``HERA_WORKER_DATABASE_URL`` it is the owner DSN, which
the start-up check then refuses if it is privileged."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import SecretStr

from pipeline.config import Settings
from pipeline.ledger.roles import WORKER_ROLE, login_refusal


def embedded_home(tmp_path: Path, port: int = 54321) -> Path:
    (tmp_path / "services.json").write_text(json.dumps({"postgres": {"port": port, "pid": 1}}))
    return tmp_path


def test_the_embedded_server_gives_the_worker_its_own_login(tmp_path: Path) -> None:
    home = embedded_home(tmp_path)
    plain = Settings(home=home)
    assert plain.worker_login_embedded and urlsplit(plain.worker_dsn()).username == WORKER_ROLE
    scratch = Settings(home=home, database_url=SecretStr("postgresql://postgres:pw@127.0.0.1:54321/hera_bench_1"))
    dsn = urlsplit(scratch.worker_dsn())
    assert scratch.worker_login_embedded and dsn.username == WORKER_ROLE and dsn.path == "/hera_bench_1"
    assert dsn.password == (home / "postgres" / "worker.password").read_text().strip()


def test_an_external_database_uses_the_configured_logins(tmp_path: Path) -> None:
    home = embedded_home(tmp_path)
    owner = "postgresql://owner:pw@db.example:5432/hera"
    external = Settings(home=home, database_url=SecretStr(owner))
    assert not external.worker_login_embedded and external.worker_dsn() == owner   # refused at start if privileged
    own = Settings(home=home, database_url=SecretStr(owner),
                   worker_database_url=SecretStr("postgresql://hera_worker:w@db.example:5432/hera"))
    assert not own.worker_login_embedded and urlsplit(own.worker_dsn()).username == WORKER_ROLE
    other_port = Settings(home=home, database_url=SecretStr("postgresql://postgres:pw@127.0.0.1:5432/hera"))
    assert not other_port.worker_login_embedded


def test_privileged_logins_are_refused_in_one_line_naming_the_setting() -> None:
    assert login_refusal(WORKER_ROLE, False, False, []) is None
    for args, why in ((("postgres", True, True, []), "is a superuser"), (("app", False, True, []), "has BYPASSRLS"),
                      (("owner", False, False, ["audit_log", "audit_heads"]), "owns the ledger tables")):
        line = login_refusal(*args)
        assert line is not None and why in line and "HERA_WORKER_DATABASE_URL" in line and "\n" not in line
