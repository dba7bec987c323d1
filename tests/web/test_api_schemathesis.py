"""The JSON API against its own OpenAPI document: schemathesis generates requests for every
operation (valid and invalid) and checks the answers (no server error, documented status codes
and content, invalid input refused), on ``hera web`` running as a subprocess with an API token."""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from pipeline.brokers import ensure_topics
from pipeline.ledger.migrate import migrate
from pipeline.web import identity
from tests.web.conftest import ORG_A, ORG_B
from tests.web.support import (
    add_user,
    feed_event,
    review_item,
    seed_orgs,
    seed_reviews,
    settings_for,
    start_web,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]
EXAMPLES_PER_OPERATION = 25
# Random ids that match the schema name items that do not exist: a 404 there is right, so the
# check that "valid-looking input is accepted" does not apply to this API.
EXCLUDED_CHECKS = "positive_data_acceptance"


async def test_the_api_holds_to_its_openapi_document(kafka_bootstrap: str, database_url: str, topic_prefix: str,
                                                     tmp_path: Path) -> None:
    settings = settings_for(kafka_bootstrap, database_url, topic_prefix, tmp_path)
    await migrate(database_url)
    await ensure_topics(settings)
    await seed_orgs(database_url, {"Alpha Trading": ORG_A, "Beta Foods": ORG_B})
    await seed_reviews(database_url, [review_item(feed_event(ORG_A, f"a-{i}", "10.00")) for i in range(5)])
    await add_user(database_url, "api", [(ORG_A, "reviewer")])
    conn = await asyncpg.connect(database_url)
    try:
        token = await identity.create_api_token(conn, "api", "schemathesis", timedelta(hours=1))
    finally:
        await conn.close()
    web, url = await start_web(kafka_bootstrap, database_url, topic_prefix, tmp_path)
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi.json", "--header",
            f"Authorization: Bearer {token}", "--checks", "all", "--exclude-checks", EXCLUDED_CHECKS,
            "--max-examples", str(EXAMPLES_PER_OPERATION), "--seed", "14", "--request-timeout", "20",
            "--generation-database", "none", "--no-color",
            cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)  # its cache goes there
        out, _ = await asyncio.wait_for(proc.communicate(), 360)
    finally:
        web.terminate()
        web.wait(10)
    report = out.decode(errors="replace")
    assert proc.returncode == 0, report[-6000:]
    assert "passed" in report
