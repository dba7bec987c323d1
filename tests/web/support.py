"""Shared by the web app's tests: organisations and review items seeded through the pipeline's own
store (as the worker queues them), users and grants, and a running app on real PostgreSQL + Kafka."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from pipeline.config import Settings
from pipeline.ledger.migrate import migrate
from pipeline.ledger.store import LedgerStore
from pipeline.web import identity

PASSWORD = "correct horse battery staple"
MEALS = "HERA.FIN.EXP.MEALS.ENTERTAINMENT.v1"
FEES = "HERA.FIN.EXP.PROFESSIONAL.FEES.v1"
GROUND = "HERA.FIN.EXP.TRAVEL.GROUND.v1"


def org_id(seed: str) -> str:
    return str(uuid.UUID(int=random.Random(f"web-{seed}").getrandbits(128), version=4))


def feed_event(org: str, event_id: str, amount: str, *, counterparty: str = "Qxzv Holdings",
               description: str = "QXZV 77812", when: datetime | None = None) -> dict[str, Any]:
    when = when or datetime(2026, 11, 2, 9, tzinfo=UTC)
    return {"schema_version": 1, "event_id": event_id, "organization_id": org, "source": "bank_feed",
            "occurred_at": when.isoformat().replace("+00:00", "Z"), "amount": amount, "currency": "USD",
            "direction": "debit", "description": description, "counterparty": counterparty}


def review_item(event: dict[str, Any], *, code: str = MEALS, confidence: float = 0.41,
                reason: str = "LOW_CONFIDENCE", offset: int = 0) -> dict[str, Any]:
    """A review item as the worker queues it (``pipeline.flow.classify_batch``)."""
    payload = {"event": event, "source": {"topic": "hera.transactions.raw", "partition": 0, "offset": offset},
               "classification": {"smart_code": code, "confidence": confidence, "method": "model",
                                  "alternatives": [[code, confidence], [FEES, 0.3], [GROUND, 0.1]]},
               "entry": {"lines": [{"account": "6500", "side": "DR", "amount": event["amount"], "currency": "USD"},
                                   {"account": "1010", "side": "CR", "amount": event["amount"], "currency": "USD"}]},
               "review_reason": reason}
    return {"org_id": event["organization_id"], "event_id": event["event_id"], "payload": payload,
            "suggested_smart_code": code, "confidence": confidence, "reason": reason}


async def seed_orgs(database_url: str, orgs: dict[str, str]) -> None:
    store = await LedgerStore.connect(database_url, pool_size=2)
    try:
        await store.ensure_organizations(list(orgs.values()), names={v: k for k, v in orgs.items()})
    finally:
        await store.close()


async def seed_reviews(database_url: str, items: list[dict[str, Any]]) -> None:
    store = await LedgerStore.connect(database_url, pool_size=2)
    try:
        for i in range(0, len(items), 2000):
            await store.add_reviews(items[i:i + 2000])
    finally:
        await store.close()


async def add_user(database_url: str, username: str, grants: list[tuple[str, str]], *,
                   platform_admin: bool = False) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await identity.add_user(conn, username, PASSWORD, platform_admin=platform_admin)
        for org, role in grants:
            await identity.grant(conn, username, org, role, granted_by="test")
    finally:
        await conn.close()


async def set_threshold(database_url: str, org: str, threshold: str) -> None:
    store = await LedgerStore.connect(database_url, pool_size=1)
    try:
        await store.set_org_settings(org, {"approval_threshold": threshold})
    finally:
        await store.close()


@dataclass
class Web:
    """A workspace app over one test database and topic prefix, and a client per user."""

    settings: Settings
    app: Any
    database_url: str
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)

    async def client(self, username: str | None = None, *, sign_in: bool = True) -> httpx.AsyncClient:
        c = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://testserver",
                              follow_redirects=False, timeout=30)
        if username and sign_in:
            await sign_in_as(c, username)
        self.clients[username or f"anon{len(self.clients)}"] = c
        return c


async def sign_in_as(c: httpx.AsyncClient, username: str, password: str = PASSWORD) -> httpx.Response:
    form = await c.get("/login")
    token = form.cookies.get("hera_login_csrf") or c.cookies.get("hera_login_csrf")
    return await c.post("/login", data={"username": username, "password": password, "csrf_token": token})


def csrf_of(html: str) -> str:
    marker = 'name="csrf_token" value="'
    start = html.index(marker) + len(marker)
    return html[start:html.index('"', start)]


def settings_for(kafka_bootstrap: str, database_url: str, topic_prefix: str, home: Path) -> Settings:
    return Settings(kafka_bootstrap=kafka_bootstrap, database_url=database_url, topic_prefix=topic_prefix,
                    home=home, partitions=2)


@asynccontextmanager
async def running_web(settings: Settings) -> AsyncIterator[Web]:
    from pipeline.brokers import ensure_topics
    from pipeline.web.app import create_app

    await migrate(settings.dsn())
    await ensure_topics(settings)
    app = create_app(settings, watch_refusals=True)
    web = Web(settings, app, settings.dsn())
    async with app.router.lifespan_context(app):
        try:
            yield web
        finally:
            for c in web.clients.values():
                await c.aclose()


def days_ago(n: int) -> datetime:
    return datetime.now(UTC) - timedelta(days=n)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_web(kafka_bootstrap: str, database_url: str, topic_prefix: str, home: Path,
                    partitions: int = 2) -> tuple[subprocess.Popen[bytes], str]:
    """``hera web`` as a subprocess on a free loopback port; returns it and its URL once it answers."""
    port = free_port()
    env = {**os.environ, "HERA_KAFKA_BOOTSTRAP": kafka_bootstrap, "HERA_DATABASE_URL": database_url,
           "HERA_TOPIC_PREFIX": topic_prefix, "HERA_HOME": str(home.resolve()), "HERA_PARTITIONS": str(partitions)}
    log = open(home / "web.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "web", "--port", str(port)], env=env,
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    async with httpx.AsyncClient() as c:
        while True:
            try:
                if (await c.get(f"{url}/login", timeout=2)).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, (home / "web.log").read_text()[-3000:]
            assert time.monotonic() - started < 30, "hera web did not start within 30 s"
            await asyncio.sleep(0.2)
    return proc, url
