"""What the ledger knows of each organisation's usual amounts per smart code, for the outlier rule
(``pipeline.domain.outliers``): entries and 99th-percentile total over the last 12 posting periods,
read inside a tenant-scoped transaction (``LedgerStore.amount_histories``)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import asyncpg

from pipeline.domain.outliers import AmountHistory

HISTORY_PERIODS = 12
TIMEOUT_SECONDS = 10.0
_HISTORY = f"""
SELECT organization_id, smart_code, count(*) AS entries,
       percentile_disc(0.99) WITHIN GROUP (ORDER BY total_amount) AS p99
  FROM universal_transactions
 WHERE organization_id = ANY($1::uuid[])
   AND posting_period >= to_char(now() - interval '{HISTORY_PERIODS} months', 'YYYY-MM')
 GROUP BY organization_id, smart_code
"""


async def read_histories(conn: asyncpg.Connection, orgs: list[uuid.UUID]
                         ) -> dict[uuid.UUID, dict[str, AmountHistory]]:
    """Per organisation, smart code -> its history (call inside a transaction acting for ``orgs``)."""
    out: dict[uuid.UUID, dict[str, AmountHistory]] = {}
    for r in await conn.fetch(_HISTORY, orgs, timeout=TIMEOUT_SECONDS):
        out.setdefault(r["organization_id"], {})[r["smart_code"]] = AmountHistory(int(r["entries"]),
                                                                                   Decimal(r["p99"]))
    return out
