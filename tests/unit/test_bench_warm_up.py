"""hera bench warms up every organisation of a run before its clock starts (pipeline/devtools/bench.py)."""

from __future__ import annotations

import json

from pipeline.devtools.bench import run_orgs
from pipeline.devtools.sample import sample_events, sample_orgs


def test_run_orgs_are_the_events_organisations_in_order_of_first_appearance() -> None:
    orgs = sample_orgs(5, seed=3)
    events = list(sample_events(23, seed=3, orgs=orgs, bad_share=0.0))
    assert run_orgs(events) == orgs


def test_run_orgs_skip_what_does_not_name_an_organisation() -> None:
    events = [b"not json", b"[1, 2]", json.dumps({"organization_id": 7}).encode(),
              json.dumps({"organization_id": "b"}).encode(), json.dumps({"organization_id": "a"}).encode(),
              json.dumps({"organization_id": "b"}).encode(), b"{}"]
    assert run_orgs(events) == ["b", "a"]
