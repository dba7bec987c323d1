"""Review-queue page benchmark: server time of ``GET /review`` with 10,000 open items (JSON).

    .venv/bin/python benchmarks/web_queue_bench.py [--items 10000] [--orgs 20] [--repeats 30]

Starts its own PostgreSQL (as the test fixtures do, in a temporary directory), migrates, queues
``items`` review items over ``orgs`` organisations through the pipeline's own store, and signs in
a reviewer holding a role on every organisation. Each request runs in-process through the ASGI
app (httpx's ASGI transport: no socket), so the time is the server's: session lookup, the user's
organisations computed by the database, the count and page queries under row-level security,
and rendering. Several pages and filters are timed; median and p95 per case, in milliseconds.
No Kafka is needed (nothing is decided).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.config import Settings  # noqa: E402
from pipeline.devtools import services  # noqa: E402
from pipeline.ledger.migrate import migrate  # noqa: E402
from tests.web.support import (  # noqa: E402
    Web,
    add_user,
    days_ago,
    feed_event,
    org_id,
    review_item,
    seed_orgs,
    seed_reviews,
)

CASES = {
    "first page (50, oldest)": "/review",
    "page 100 (50 per page)": "/review?page=100",
    "sorted by amount, 200 per page": "/review?sort=amount_desc&page_size=200",
    "amount range + counterparty": "/review?amount_min=100&amount_max=900&counterparty=cafe",
    "one organisation": None,  # filled in with the first org
    "JSON API first page": "/api/v1/review",
}


async def run(items: int, orgs: int, repeats: int) -> dict[str, object]:
    home = Path(tempfile.mkdtemp(prefix="hera-webbench-"))
    home.chmod(0o755)
    data_dir = home / "postgres" / "data"
    handle = services.start_postgres(data_dir, services.free_port(), durable=False)
    try:
        dsn = await services.create_database(handle.url("postgres"), "webbench")
        await migrate(dsn)
        org_ids = [org_id(f"bench-{i}") for i in range(orgs)]
        await seed_orgs(dsn, {f"Org {i:02d}": o for i, o in enumerate(org_ids)})
        counterparties = ["Cafe Uno", "Taxi Rapid", "Office World", "Hotel Sol", "Qxzv Holdings"]
        await seed_reviews(dsn, [review_item(feed_event(org_ids[i % orgs], f"e-{i:06d}", f"{10 + (i * 37) % 990}.{i % 100:02d}",
                                                        counterparty=counterparties[i % 5], when=days_ago(i % 30)),
                                             offset=i) for i in range(items)])
        await add_user(dsn, "bench", [(o, "reviewer") for o in org_ids])
        CASES["one organisation"] = f"/review?org={org_ids[0]}"
        from pipeline.web.app import create_app

        settings = Settings(database_url=dsn, kafka_bootstrap="127.0.0.1:9", home=home)
        app = create_app(settings, watch_refusals=False, send=lambda _m: None)
        web = Web(settings, app, dsn)
        results: dict[str, dict[str, float]] = {}
        async with app.router.lifespan_context(app):
            c = await web.client("bench")
            for name, path in CASES.items():
                assert path is not None
                first = await c.get(path)
                assert first.status_code == 200, (path, first.status_code)
                times = []
                for _ in range(repeats):
                    start = time.perf_counter()
                    r = await c.get(path)
                    times.append((time.perf_counter() - start) * 1000)
                    assert r.status_code == 200
                times.sort()
                results[name] = {"median_ms": round(statistics.median(times), 1),
                                 "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1), "bytes": len(r.content)}
            await c.aclose()
        return {"items": items, "organisations": orgs, "repeats": repeats, "cases": results}
    finally:
        services.stop_postgres(data_dir)
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--orgs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.items, args.orgs, args.repeats)), indent=2))


if __name__ == "__main__":
    main()
