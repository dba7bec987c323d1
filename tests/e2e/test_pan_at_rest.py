"""No card number at rest outside the raw topic (PCI DSS 3.3 / 3.5.1), end to end: events carrying
Luhn-valid PANs in every field and every way of writing them go through a real worker; then every
topic except the raw one (keys, values, headers, base64 inside them) and every table of the
database are scanned. Zero hits."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

import asyncpg
import pytest

from pipeline.config import TOPICS
from pipeline.domain.pan import contains_pan, mask_pans
from tests.e2e import harness
from tests.e2e.harness import Pipeline, org_ids

pytestmark = [pytest.mark.e2e]
pipe = harness.pipe  # fixture

PANS = ["4111111111111111", "5555555555554444", "378282246310005", "6011111111111117", "4012888888881881",
        "3530111333300000", "5105105105105100", "4222222222222"]
EN_DASH = "\u2013"
_HEX_DIGEST = re.compile(r"(?<![0-9a-f])[0-9a-f]{32,}(?![0-9a-f])")
_BASE64 = re.compile(r"[A-Za-z0-9+/]{24,}={0,2}")


def grouped(pan: str, sep: str, size: int = 4) -> str:
    return sep.join(pan[i:i + size] for i in range(0, len(pan), size))


def fullwidth(text: str) -> str:
    return text.translate(str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10))))


def events(org: str) -> list[bytes]:
    base = {"schema_version": 1, "organization_id": org, "occurred_at": "2026-11-02T10:00:00Z", "currency": "USD"}
    feed = {**base, "source": "card_feed", "direction": "debit", "amount": "23.40"}
    out = [
        {**feed, "event_id": "pan-desc", "description": f"UBER *TRIP {grouped(PANS[0], '  ')} HELP.UBER.COM"},
        {**feed, "event_id": "pan-cp", "description": "STARBUCKS 123", "counterparty": grouped(PANS[1], "\u00a0")},
        {**feed, "event_id": "pan-ref", "description": "SHELL 88", "reference": fullwidth(PANS[2])},
        {**feed, "event_id": "pan-meta", "description": "AMAZON MKTPLACE",
         "metadata": {"card": {"number": [grouped(PANS[3], "-")]}, grouped(PANS[4], " - "): "key"}},
        {**feed, "event_id": "pan-review", "description": "XQZ " + grouped(PANS[5], EN_DASH) + " ZZT QQ"},
        {**base, "source": "erp", "kind": "bill.received", "event_id": "pan-line", "amount": "50.00",
         "counterparty": "Office World", "lines": [{"description": f"toner {PANS[6]}", "amount": "50.00"}]},
        {**feed, "event_id": f"id-{PANS[7]}", "description": "TAXI"},                  # rejected: PAN in the id
        {**feed, "event_id": "pan-field", "description": "TAXI", grouped(PANS[0], " "): 1},   # a field name
    ]
    raw = [json.dumps(e, ensure_ascii=False).encode() for e in out]
    escaped = json.dumps({**feed, "event_id": "pan-escaped", "description": "CAFE " + PANS[1]}, ensure_ascii=False)
    raw.append(escaped.replace(PANS[1], "".join(f"\\u{ord(c):04x}" for c in PANS[1])).encode())
    return raw


def leaks(data: bytes | str | None, depth: int = 0) -> list[str]:
    """What in ``data`` reads as a card number: the text itself, strings inside JSON, base64 inside."""
    if data is None or depth > 3:
        return []
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    text = _HEX_DIGEST.sub("<digest>", text)   # sha256 hex (fingerprints, chain links) can hold 13 decimals
    found = [_around_pan(text)] if contains_pan(text) else []
    try:
        found += [_around_pan(s) for s in _strings(json.loads(text)) if contains_pan(s)]
    except ValueError:
        pass
    for blob in _BASE64.findall(text):
        try:
            found += leaks(base64.b64decode(blob, validate=True), depth + 1)
        except (binascii.Error, ValueError):
            continue
    return found


def _around_pan(text: str) -> str:
    """The first place where masking would change ``text``, with some context."""
    masked = mask_pans(text)
    start = next((i for i, (a, b) in enumerate(zip(text, masked, strict=False)) if a != b), 0)
    return text[max(0, start - 30):start + 40]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *_strings(v))]
    return []


@pytest.mark.timeout(180)
async def test_no_pan_in_any_topic_but_raw_nor_in_any_table(pipe: Pipeline) -> None:
    org = org_ids(1, "pan")[0]
    raw = events(org)
    worker = pipe.start_worker()
    await pipe.produce(raw[::2], by_org=True)   # on the organisation's partition: processed in place
    await pipe.produce(raw[1::2])               # unkeyed: through the validated topic
    await pipe.wait_accounted(len(raw), 90, watch=[worker])
    assert any(contains_pan(m.value.decode("utf-8", "replace")) for m in await pipe.read_topic("raw"))

    hits: dict[str, list[str]] = {}
    for key in TOPICS:
        if key == "raw":
            continue
        for m in await pipe.read_topic(key):
            found = leaks(m.key) + leaks(m.value) + [x for _, v in (m.headers or []) for x in leaks(v)]
            if found:
                hits.setdefault(f"topic {key}", []).extend(found)
    conn = await asyncpg.connect(pipe.database_url)
    try:
        for table in [r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]:
            for row in await conn.fetch(f'SELECT t::text AS row FROM "{table}" t'):
                found = leaks(row["row"])
                if found:
                    hits.setdefault(f"table {table}", []).extend(found)
    finally:
        await conn.close()
    assert hits == {}, sorted(hits)
