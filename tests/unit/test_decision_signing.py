"""Signed review decisions (pipeline.signing) and the worker's parse of them (pipeline.review)."""

from __future__ import annotations

import json
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pydantic import SecretStr

from pipeline.config import Settings
from pipeline.domain.catalog import load_catalog
from pipeline.domain.outcomes import Reason, Rejected
from pipeline.review import parse_decision
from pipeline.signing import decision_key, sign, verify

KEY = b"k" * 64
ORG = "9a91e6e4-9355-4956-a042-605b52f10b48"
DECISION = {"organization_id": ORG, "event_id": "e-1", "decision": "correct",
            "smart_code": "HERA.FIN.EXP.PROFESSIONAL.FEES.v1", "reviewer": "ana", "reviewer_id": "u-1",
            "decision_id": "d-1", "signed_at": "2026-12-03T09:00:00+00:00"}


def test_a_signed_decision_verifies_and_parses() -> None:
    signed = sign(DECISION, KEY)
    assert verify(signed, KEY) is None
    parsed = parse_decision(json.dumps(signed).encode(), load_catalog(), KEY)
    assert isinstance(parsed, dict) and parsed["reviewer"] == "ana"


def test_unsigned_is_refused() -> None:
    parsed = parse_decision(json.dumps(DECISION).encode(), load_catalog(), KEY)
    assert isinstance(parsed, Rejected) and parsed.reason is Reason.DECISION_UNSIGNED


@pytest.mark.parametrize("change", [
    {"reviewer": "mallory"}, {"decision": "approve"}, {"organization_id": "0" * 8 + ORG[8:]},
    {"smart_code": "HERA.FIN.EXP.TRAVEL.GROUND.v1"}, {"extra": 1}])
def test_any_change_after_signing_is_forged(change: dict[str, object]) -> None:
    tampered = {**sign(DECISION, KEY), **change}
    parsed = parse_decision(json.dumps(tampered).encode(), load_catalog(), KEY)
    assert isinstance(parsed, Rejected) and parsed.reason is Reason.DECISION_FORGED


@pytest.mark.parametrize("signature", ["hmac-sha256=" + "0" * 64, "sha1=abc", 42, "hmac-sha256=ÿ"])
def test_a_wrong_signature_is_forged(signature: object) -> None:
    assert verify({**DECISION, "signature": signature}, KEY).reason is Reason.DECISION_FORGED  # type: ignore[union-attr]


def test_signed_with_another_key_is_forged() -> None:
    assert verify(sign(DECISION, b"other" * 10), KEY).reason is Reason.DECISION_FORGED  # type: ignore[union-attr]


def test_the_generated_key_is_private_shared_and_stable(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: decision_key(settings), range(16)))
    assert len(keys) == 1 and len(next(iter(keys))) >= 32
    mode = stat.S_IMODE(os.stat(tmp_path / "decision.key").st_mode)
    assert mode == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["decision.key"]  # no temporary file left
    assert decision_key(Settings(home=tmp_path)) == next(iter(keys))


def test_a_configured_key_wins_and_must_be_long(tmp_path: Path) -> None:
    assert decision_key(Settings(home=tmp_path, decision_key=SecretStr("s" * 40))) == b"s" * 40
    with pytest.raises(ValueError, match="at least 32"):  # refused when the settings are read, at start-up
        Settings(home=tmp_path, decision_key=SecretStr("short"))
    assert "s" * 40 not in json.dumps(Settings(home=tmp_path, decision_key=SecretStr("s" * 40)).public_dict())
