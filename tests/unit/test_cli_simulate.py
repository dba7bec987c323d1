"""`hera simulate`: docs/cli.md's JSON per input line, in order, without broker or database."""

import json
from pathlib import Path

from click.testing import CliRunner

from pipeline.cli.app import main

ORG = "6f1c2f0e-5a7e-4b7a-9d0a-2b8a3c1d4e5f"


def test_simulate_prints_one_object_per_line_in_order(tmp_path: Path) -> None:
    pos = {"schema_version": 1, "event_id": "e1", "organization_id": ORG, "source": "pos",
           "kind": "pos.daily_summary", "occurred_at": "2026-11-01T10:00:00Z", "amount": "105.00",
           "currency": "USD", "tip": "5.00", "tax": {"rate": "0.05"},
           "lines": [{"description": "Services", "amount": "95.24", "category": "service"}],
           "payments": [{"method": "card", "amount": "105.00"}]}
    bad = {**pos, "event_id": "e2", "amount": "-3.00"}
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join([json.dumps(pos), json.dumps(bad), "not json"]) + "\n")
    result = CliRunner().invoke(main, ["simulate", str(path)])
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in result.output.splitlines()]
    assert [o["event_id"] for o in out] == ["e1", "e2", None]
    assert out[0]["outcome"] == "posted" and out[0]["confidence"] == 1.0
    assert out[0]["lines"] == [
        {"account": "1020", "side": "DR", "amount": "105.00", "currency": "USD"},
        {"account": "4100", "side": "CR", "amount": "95.24", "currency": "USD"},
        {"account": "2100", "side": "CR", "amount": "4.76", "currency": "USD"},
        {"account": "2500", "side": "CR", "amount": "5.00", "currency": "USD"},
    ]
    assert (out[1]["outcome"], out[1]["reason"], out[1]["lines"]) == ("rejected", "AMOUNT_INVALID", [])
    assert (out[2]["outcome"], out[2]["reason"]) == ("rejected", "ENCODING_INVALID")


def test_simulate_says_why_a_feed_line_goes_to_review(tmp_path: Path) -> None:
    line = {"schema_version": 1, "event_id": "f1", "organization_id": ORG, "source": "card_feed",
            "occurred_at": "2026-11-01T10:00:00Z", "amount": "12.00", "currency": "USD", "direction": "debit",
            "description": "ZQXWV PLORKTAB 0042"}
    path = tmp_path / "feed.jsonl"
    path.write_text(json.dumps(line) + "\n")
    result = CliRunner().invoke(main, ["simulate", str(path)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output.splitlines()[0])
    assert out["outcome"] == "review" and out["reason"] == "LOW_CONFIDENCE"
    why = out["explanation"]
    assert why["method"] == "model" and why["capped_by"] == "nothing_known"
    assert why["unknown_tokens"] == ["zqxwv", "plorktab"] and "top_features" in why
