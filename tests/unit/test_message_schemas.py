"""The published JSON Schemas (schemas/json/) are current, valid draft 2020-12, show the raw event's
constraints, and agree with the pydantic models on what is valid; the posted message is posted/v2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pipeline.domain.catalog import load_catalog
from pipeline.domain.entries import JournalEntry
from pipeline.domain.posting import build_entry
from pipeline.domain.validate import Validated, validate_raw
from pipeline.envelopes import posted_message
from schemas.messages import (
    MODELS,
    SCHEMA_HEADER,
    SCHEMA_HEADER_VALUES,
    json_schema,
    json_schemas,
    schema_header,
)

ROOT = Path(__file__).resolve().parents[2]
ORG = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
POS = {"schema_version": 1, "event_id": "pos-1", "organization_id": ORG, "source": "pos",
       "kind": "pos.daily_summary", "occurred_at": "2024-05-01T22:00:00+04:00", "currency": "AED",
       "amount": "105.00", "tip": "5.00", "tax": {"rate": "0.05"},
       "lines": [{"description": "Services", "amount": "95.24", "category": "service"}],
       "payments": [{"method": "card", "amount": "105.00"}]}
FEED = {"schema_version": 1, "event_id": "c-1", "organization_id": ORG, "source": "card_feed",
        "occurred_at": "2024-05-01T10:00:00Z", "amount": "12.40", "currency": "usd", "direction": "debit",
        "description": "UBER *TRIP HELP.UBER.COM"}


def validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json_schema(name), format_checker=jsonschema.FormatChecker())


def test_generated_files_are_current() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "generate_contracts.py"), "--check"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for name, schema in json_schemas().items():
        files = list((ROOT / "schemas" / "json").glob(f"{name}.v*.schema.json"))
        assert len(files) == 1 and json.loads(files[0].read_text()) == schema


@pytest.mark.parametrize("name", sorted(MODELS))
def test_schemas_are_draft_2020_12(name: str) -> None:
    schema = json_schema(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["x-hera-schema"] == SCHEMA_HEADER_VALUES[name].decode()


def test_raw_constraints_are_visible() -> None:
    props = json_schema("raw")["properties"]
    assert props["amount"]["type"] == "string" and props["amount"]["pattern"].startswith("^(0|[1-9]")
    assert props["organization_id"]["format"] == "uuid" and "pattern" in props["organization_id"]
    assert props["occurred_at"]["format"] == "date-time"
    assert props["currency"]["pattern"] == "^[A-Za-z]{3}$"
    assert props["schema_version"]["const"] == 1


GOOD = [POS, FEED, {**FEED, "tax": {"amount": "1.00"}, "mcc": "4121", "metadata": {"card": "x"}}]
BAD = [
    {**FEED, "amount": 12.4},                     # a JSON number
    {**FEED, "amount": "0"},                      # not > 0
    {**FEED, "amount": "1e3"},                    # exponent
    {**FEED, "amount": "012.40"},                 # leading zero
    {**FEED, "organization_id": "acme"},          # not a UUID
    {**FEED, "occurred_at": "2024-05-01"},        # no time
    {**FEED, "currency": "US"},
    {k: v for k, v in FEED.items() if k != "description"},   # a feed line needs a description
    {**FEED, "colour": "red"},                    # unknown field
    {**FEED, "schema_version": 2},
    {**POS, "tax": {"rate": "0.05", "amount": "4.76"}},      # exactly one of rate / amount
]


@pytest.mark.parametrize("event", GOOD)
def test_schema_accepts_what_the_model_accepts(event: dict[str, Any]) -> None:
    assert isinstance(validate_raw(json.dumps(event).encode()), Validated)
    validator("raw").validate(event)


@pytest.mark.parametrize("event", BAD)
def test_schema_refuses_what_the_model_refuses(event: dict[str, Any]) -> None:
    assert not isinstance(validate_raw(json.dumps(event).encode()), Validated)
    assert not validator("raw").is_valid(event)


def test_posted_v2_keeps_source_and_gives_origin_and_one_confidence() -> None:
    checked = validate_raw(json.dumps(POS).encode())
    assert isinstance(checked, Validated)
    entry = build_entry(checked.event, "HERA.FIN.POS.DAILY.SUMMARY.v1", load_catalog())
    assert isinstance(entry, JournalEntry)
    origin = {"topic": "hera.transactions.raw", "partition": 2, "offset": 41}
    cls = {"smart_code": entry.smart_code, "confidence": 0.9734, "method": "rule", "alternatives": []}
    emit = posted_message(entry, "8c4f7d0e-2b1a-5c3d-9e8f-0a1b2c3d4e5f", classification=cls, source=origin)
    body = json.loads(emit.value)
    validator("posted").validate(body)
    assert body["source"] == "pos" and body["origin"] == origin
    assert body["confidence"] == "0.9734" and body["schema_version"] == 2
    assert emit.key == ORG.encode()
    assert {(ln["account"], ln["side"], ln["amount"]) for ln in body["lines"]} == {
        ("1020", "DR", "105.00"), ("4100", "CR", "95.24"), ("2100", "CR", "4.76"), ("2500", "CR", "5.00")}
    assert set(body) <= set(json_schema("posted")["properties"])   # every field is documented


def test_decision_schema() -> None:
    ok = {"organization_id": ORG, "event_id": "e1", "decision": "correct",
          "smart_code": "HERA.FIN.EXP.TRAVEL.GROUND.v1", "reviewer": "ana"}
    validator("decision").validate(ok)
    assert not validator("decision").is_valid({**ok, "smart_code": None})
    assert not validator("decision").is_valid({**ok, "decision": "maybe"})


def test_schema_header_values() -> None:
    assert SCHEMA_HEADER == "hera-schema"
    assert schema_header("posted") == ("hera-schema", b"posted/v2")
    assert {v.decode() for v in SCHEMA_HEADER_VALUES.values()} == {
        "raw/v1", "posted/v2", "review/v1", "decision/v1", "deadletter/v1"}
