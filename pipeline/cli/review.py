"""``hera review``: list the open review items of an organisation; decide one.

``decide`` checks before it sends (the item exists and is open; a correction names a smart code
of the catalog), writes a ``decision/v1`` message to ``hera.review.decisions``, then waits, at
most ``--timeout`` seconds, for the worker to resolve the item, and prints the outcome
(docs/decisions.md). No outcome in time is exit 1: the decision is sent and will still be
applied when a worker runs.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import time
from typing import Any

import click

from pipeline.cli.app import ORG_ID, bootstrap_of, emit, main, with_store
from pipeline.cli.books import unknown_org
from pipeline.cli.errors import BadUsage, CheckFailed, kafka_unreachable
from pipeline.config import Settings
from pipeline.output import Report, format_option, render

DECIDE_TIMEOUT_SECONDS = 30.0
DECIDE_POLL_SECONDS = 0.5


@main.group()
def review() -> None:
    """The human review queue: list open items, approve or correct them."""


@review.command("list")
@click.option("--org", "org_id", required=True, type=ORG_ID)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@format_option()
@click.pass_obj
def review_list(settings: Settings, org_id: str, limit: int, fmt: str) -> None:
    """Open review items of one organisation, oldest first."""
    async def read(store: Any) -> list[dict[str, Any]]:
        if org_id not in await store.known_organizations():
            raise unknown_org(org_id)
        return await store.open_reviews(org_id, limit=limit)

    items = [{"event_id": i["event_id"], "suggested_smart_code": i["suggested_smart_code"],
              "confidence": i["confidence"], "reason": i["reason"],
              "description": i["payload"].get("event", {}).get("description"),
              "counterparty": i["payload"].get("event", {}).get("counterparty"),
              "amount": i["payload"].get("event", {}).get("amount"),
              "currency": i["payload"].get("event", {}).get("currency"),
              "alternatives": i["payload"].get("classification", {}).get("alternatives")}
             for i in asyncio.run(with_store(settings, read))]
    cols = ["event_id", "suggested_smart_code", "confidence", "reason", "amount", "currency", "counterparty",
            "description"]
    render(Report(f"Open review items of {org_id}", cols, [[i[c] for c in cols] for i in items],
                  {"organization_id": org_id, "items": items}, right=frozenset({"confidence", "amount"})), fmt)


@review.command("decide")
@click.option("--org", "org_id", required=True, type=ORG_ID)
@click.option("--event", "event_id", required=True)
@click.option("--approve", is_flag=True, help="accept the suggested smart code")
@click.option("--correct", "smart_code", default=None, help="post with this smart code instead")
@click.option("--reviewer", default=getpass.getuser, show_default="login name")
@click.option("--timeout", "timeout_seconds", default=DECIDE_TIMEOUT_SECONDS, show_default=True,
              type=click.FloatRange(0, 600), help="seconds to wait for the outcome (0: do not wait)")
@click.pass_obj
def review_decide(settings: Settings, org_id: str, event_id: str, approve: bool, smart_code: str | None,
                  reviewer: str, timeout_seconds: float) -> None:
    """Send a decision to hera.review.decisions and wait for the pipeline to post it."""
    if approve == (smart_code is not None):
        raise BadUsage("give exactly one of --approve or --correct CODE", "see `hera review decide --help`")
    if smart_code is not None:
        from pipeline.domain.catalog import load_catalog
        if not load_catalog().is_known(smart_code):
            raise BadUsage(f"{smart_code!r} is not a smart code of the catalog", "pick one from docs/catalog.md")
    decision = {"organization_id": org_id, "event_id": event_id, "reviewer": reviewer,
                "decision": "approve" if approve else "correct", "smart_code": smart_code}
    emit(asyncio.run(with_store(settings, lambda store: _decide(settings, store, decision, timeout_seconds))))


async def _decide(settings: Settings, store: Any, decision: dict[str, Any], timeout_seconds: float) -> dict[str, Any]:
    org_id, event_id = decision["organization_id"], decision["event_id"]
    if org_id not in await store.known_organizations():
        raise unknown_org(org_id)
    item = await store.get_review(org_id, event_id)
    if item is None:
        raise CheckFailed(f"no review item for event {event_id!r} of organisation {org_id}",
                          f"list the open ones with `hera review list --org {org_id}`")
    if item["status"] != "open":
        raise CheckFailed(f"review item {event_id!r} is already {item['status']} "
                          f"(as {item.get('resolved_smart_code')})", "nothing to do")
    await _send(settings, decision)
    out: dict[str, Any] = {"sent": decision, "topic": settings.topic("decisions")}
    deadline = time.monotonic() + timeout_seconds
    while timeout_seconds > 0:
        item = await store.get_review(org_id, event_id)
        if item is not None and item["status"] != "open":
            return {**out, "outcome": item["status"], "smart_code": item.get("resolved_smart_code")}
        if time.monotonic() >= deadline:
            raise CheckFailed(f"decision sent, but no outcome within {timeout_seconds:g} s",
                              "is a worker running (`hera run`)? it will apply the decision when it does")
        await asyncio.sleep(DECIDE_POLL_SECONDS)
    return {**out, "outcome": "sent"}


async def _send(settings: Settings, decision: dict[str, Any]) -> None:
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    from pipeline.brokers import client_kwargs
    from schemas.messages import schema_header

    bootstrap = bootstrap_of(settings)
    producer = AIOKafkaProducer(**client_kwargs(settings), request_timeout_ms=10_000)
    try:
        await producer.start()
    except KafkaError as exc:
        await producer.stop()
        raise kafka_unreachable(bootstrap, exc) from exc
    try:
        from pipeline.signing import decision_key, sign  # the worker takes only signed decisions

        signed = sign(decision, decision_key(settings))
        await producer.send_and_wait(settings.topic("decisions"), json.dumps(signed).encode(),
                                     key=decision["organization_id"].encode(), headers=[schema_header("decision")])
    finally:
        await producer.stop()
