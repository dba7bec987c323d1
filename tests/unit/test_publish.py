"""Every message the worker produces names its contract in a ``hera-schema`` header."""

from __future__ import annotations

from agents.publish import SCHEMA_HEADER, SCHEMAS, with_schema
from pipeline.config import TOPICS


def test_every_produced_topic_has_a_schema_and_posted_is_v2() -> None:
    produced = set(TOPICS) - {"raw"}  # the raw topic is written by producers, never by the worker
    assert produced <= set(SCHEMAS)
    assert SCHEMAS["posted"] == "posted/v2"
    assert all(name.endswith("/v1") for key, name in SCHEMAS.items() if key != "posted")


def test_the_header_comes_first_and_keeps_the_others() -> None:
    headers = with_schema("deadletter", (("hera-reason", b"POISON"),))
    assert headers == [(SCHEMA_HEADER, b"deadletter/v1"), ("hera-reason", b"POISON")]
