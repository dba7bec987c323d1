"""Secrets are masked in every DSN form; settings that cannot work are refused in one line."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pipeline.config import Settings, SettingsError, mask_dsn, settings_error_line


@pytest.mark.parametrize(("dsn", "masked"), [
    ("postgresql://u:s3cret@h:5432/db", "postgresql://u:***@h:5432/db"),
    ("postgresql://u:p@ss/w0rd@h1:1,h2:2/db?sslmode=require&password=s3cret&SSLPASSWORD=s3cret",
     "postgresql://u:***@h1:1,h2:2/db?sslmode=require&password=***&SSLPASSWORD=***"),
    ("postgres://h/db?password=s3cret", "postgres://h/db?password=***"),
    ("postgresql://u@h/db", "postgresql://u@h/db"),
    ("host=h user=u password=s3cret sslpassword='s3 cret\\' x' dbname=d",
     "host=h user=u password=*** sslpassword=*** dbname=d"),
    ("host=h PASSWORD = s3cret", "host=h PASSWORD = ***"),
])
def test_every_dsn_form_is_masked(dsn: str, masked: str) -> None:
    assert mask_dsn(dsn) == masked
    assert "s3cret" not in mask_dsn(dsn) and "cret" not in mask_dsn(dsn)


def test_public_dict_masks_the_database_url_and_the_audit_key() -> None:
    settings = Settings(database_url="host=h password=s3cret", audit_key="k" * 40)
    text = str(settings.public_dict())
    assert "s3cret" not in text and "k" * 40 not in text


def test_a_rate_limit_beyond_the_token_bucket_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERA_RATE_LIMIT_PER_MINUTE", "100000000")
    with pytest.raises(ValidationError) as exc:
        Settings()
    line = settings_error_line(exc.value)
    assert line.startswith("HERA_RATE_LIMIT_PER_MINUTE=100000000:") and "\n" not in line


@pytest.mark.parametrize(("changes", "name"), [
    ({"heartbeat_interval_seconds": 10.0}, "HERA_HEARTBEAT_INTERVAL_SECONDS"),
    ({"payload_bytes_max": 50 * 1024 * 1024}, "HERA_PAYLOAD_BYTES_MAX"),
    ({"audit_key": "short"}, "HERA_AUDIT_KEY"),
    ({"log_level": "loud"}, "HERA_LOG_LEVEL"),
    ({"database_url": "mysql://h/db"}, "HERA_DATABASE_URL"),
    ({"occurred_at_earliest": "2030-01-01T00:00:00Z", "occurred_at_latest": "2020-01-01T00:00:00Z"},
     "HERA_OCCURRED_AT_EARLIEST"),
])
def test_check_names_the_setting_in_one_line(changes: dict[str, object], name: str) -> None:
    settings = Settings(**changes)
    with pytest.raises(SettingsError) as exc:
        settings.check()
    assert str(exc.value).startswith(name) and "\n" not in str(exc.value)


def test_defaults_pass_the_check() -> None:
    Settings().check()


def test_org_settings_beyond_the_token_bucket_are_named_and_never_used() -> None:
    from pipeline.admission.rate_limit import check_org_settings, rate_limit_values

    conf = {"rate_limit_per_minute": 100_000_000, "rate_limit_burst": "abc"}
    problems = check_org_settings(conf)
    assert [p.split("=")[0] for p in problems] == ["rate_limit_per_minute", "rate_limit_burst"]
    assert rate_limit_values(conf, 100, 50) == (100, 50)
    assert rate_limit_values({"rate_limit_per_minute": "600", "rate_limit_burst": 20}, 100, 50) == (600, 20)
    assert check_org_settings({"rate_limit_per_minute": 600}) == []


def test_org_set_refuses_what_the_token_bucket_cannot_take() -> None:
    """``hera org set`` (schemas.org_settings) and the worker's bucket share one limit: a value the
    command accepts is never one the worker would replace by the default."""
    from pipeline.admission.rate_limit import BURST_MAX, PER_MINUTE_MAX
    from schemas.org_settings import RATE_PER_MINUTE_MAX

    assert RATE_PER_MINUTE_MAX == PER_MINUTE_MAX == BURST_MAX
