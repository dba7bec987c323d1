"""What the ledger knows of each organisation's usual amounts per smart code, for the outlier rule
(``pipeline.domain.outliers``): entries and 99th-percentile total, read tenant-scoped."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import asyncpg

from pipeline.domain.outliers import AmountHistory
from pipeline.ledger.tenancy import tenant_transaction

_HISTORY = """
SELECT organization_id::text AS org, smart_code, count(*) AS entries,
       percentile_disc(0.99) WITHIN GROUP (ORDER BY total_amount) AS p99
  FROM universal_transactions
 WHERE organization_id = ANY($1::uuid[])
 GROUP BY organization_id, smart_code
"""


async def amount_histories(conn: asyncpg.Connection, orgs: Sequence[str], *, timeout_seconds: float = 10.0
                           ) -> dict[tuple[str, str], AmountHistory]:
    """(organisation, smart code) -> its history, for the given organisations."""
    if not orgs:
        return {}
    async with tenant_transaction(conn, orgs, readonly=True):
        rows = await conn.fetch(_HISTORY, list(orgs), timeout=timeout_seconds)
    return {(r["org"], r["smart_code"]): AmountHistory(int(r["entries"]), Decimal(r["p99"])) for r in rows}
