"""A realistic mixed stream of raw events for ``make run``, ``hera demo`` and the benchmarks.

Deterministic for a seed. Mostly card and bank feed lines with real-world descriptors, plus
structured events (invoices, bills, POS summaries, payroll, payments) and a small share of bad
input (broken JSON, negative amounts, unknown currencies) that must be dead-lettered.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

FEED_LINES = [
    ("UBER *TRIP HELP.UBER.COM", "4121"), ("SQ *BLUE BOTTLE COFFEE SF", "5814"),
    ("STARBUCKS STORE 12345 SEATTLE", "5814"), ("SHELL OIL 57444 HOUSTON TX", "5541"),
    ("DELTA AIR 0062345678901", "3058"), ("MARRIOTT DOWNTOWN CHICAGO", "3509"),
    ("AMZN Mktp US*2K4LL8", "5942"), ("GOOGLE *GSUITE_ACME", "5734"), ("ADOBE *CREATIVE CLOUD", "5734"),
    ("VODAFONE TOPUP 0777", "4814"), ("EDF ENERGY DD", "4900"), ("WEWORK 1 MARKET ST", "6513"),
    ("STAPLES 00123 BOSTON", "5943"), ("APPLE STORE R123", "5732"), ("FACEBK *ADS 4KJ2H", "7311"),
    ("DHL EXPRESS DUBAI", "4215"), ("CARREFOUR CITY PARIS 11", "5411"), ("LIDL SAGT DANKE", "5411"),
    ("VNPAY*HIGHLANDS COFFEE HCM", "5814"), ("PAYPAL *NETFLIX.COM", "4899"), ("GRAB*A-7DKJ2 SINGAPORE", "4121"),
    ("BOOKING.COM HOTEL AMSTERDAM", "4722"), ("DEUTSCHE BAHN FAHRKARTE", "4112"), ("ENOC 1043 DUBAI", "5542"),
    ("BOOTS 1123 LONDON", "5912"), ("HOME DEPOT #4567", "5200"), ("COURSERA.ORG", "8299"),
    ("AXA ASSURANCE PREMIUM", "6300"), ("STRIPE FEE", None), ("DELIVEROO LONDON", "5812"),
]
COUNTERPARTIES = ["Acme Trading LLC", "Globex GmbH", "Initech Ltd", "Umbrella FZE", "Stark Supplies"]


def _money(rng: random.Random, lo: int, hi: int) -> Decimal:
    return Decimal(rng.randint(lo * 100, hi * 100)) / 100


ORG_EVENTS_PER_BATCH = 80  # stay under the default burst of 100 per organisation


def sample_orgs(count: int, seed: int) -> list[str]:
    rng = random.Random(f"orgs-{seed}")
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(count)]


def sample_events(n: int, *, seed: int = 7, orgs: list[str] | None = None, bad_share: float = 0.02,
                  start: datetime | None = None) -> Iterator[bytes]:
    """Yield ``n`` raw events as bytes (what a producer would write to ``hera.transactions.raw``).

    By default spread over enough organisations that none exceeds the default rate-limit burst.
    """
    rng = random.Random(seed)
    orgs = orgs or sample_orgs(max(3, -(-n // ORG_EVENTS_PER_BATCH)), seed)
    start = start or datetime(2026, 11, 1, tzinfo=UTC)
    for i in range(n):
        org = orgs[i % len(orgs)]
        when = (start + timedelta(minutes=i)).isoformat().replace("+00:00", "Z")
        base = {"schema_version": 1, "event_id": f"evt-{seed}-{i:08d}", "organization_id": org, "occurred_at": when}
        roll = rng.random()
        if roll < bad_share:
            yield _bad_event(rng, base)
            continue
        if roll < 0.70:
            desc, mcc = rng.choice(FEED_LINES)
            source = rng.choice(["card_feed", "bank_feed"])
            event = {**base, "source": source, "amount": str(_money(rng, 3, 900)), "currency": "USD",
                     "direction": "debit", "description": desc}
            if mcc and source == "card_feed":
                event["mcc"] = mcc
        elif roll < 0.80:
            amount = _money(rng, 100, 5000)
            event = {**base, "source": "erp", "kind": "invoice.issued", "amount": str(amount), "currency": "USD",
                     "counterparty": rng.choice(COUNTERPARTIES), "tax": {"rate": "0.05"},
                     "reference": f"INV-{i:06d}"}
        elif roll < 0.88:
            event = {**base, "source": "erp", "kind": "payment.received", "amount": str(_money(rng, 100, 5000)),
                     "currency": "USD", "counterparty": rng.choice(COUNTERPARTIES)}
        elif roll < 0.95:
            event = {**base, "source": "pos", "kind": "pos.daily_summary", "amount": "105.00", "currency": "USD",
                     "tip": "5.00", "tax": {"rate": "0.05"},
                     "lines": [{"description": "Services", "amount": "95.24", "category": "service"}],
                     "payments": [{"method": "card", "amount": "105.00"}]}
        else:
            event = {**base, "source": "erp", "kind": "payment.sent", "amount": str(_money(rng, 50, 3000)),
                     "currency": "USD", "counterparty": rng.choice(COUNTERPARTIES)}
        yield json.dumps(event).encode()


def _bad_event(rng: random.Random, base: dict[str, object]) -> bytes:
    kind = rng.randrange(4)
    if kind == 0:
        return b'{"schema_version": 1, "event_id": "broken'  # truncated JSON
    if kind == 1:
        return json.dumps({**base, "source": "bank_feed", "amount": "-12.00", "currency": "USD",
                           "direction": "debit", "description": "NEGATIVE"}).encode()
    if kind == 2:
        return json.dumps({**base, "source": "bank_feed", "amount": "12.00", "currency": "XQQ",
                           "direction": "debit", "description": "BAD CURRENCY"}).encode()
    return json.dumps({**base, "source": "teleport", "amount": "1.00", "currency": "USD"}).encode()
