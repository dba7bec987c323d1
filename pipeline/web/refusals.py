"""Tell the workspace which of its decisions the pipeline refused.

The worker dead-letters a decision it cannot take (unsigned, forged, unknown smart code, an
entry that cannot be built …) with the decision's own bytes as the value and the reason in the
``hera-reason`` header. This task reads ``hera.deadletter`` from its end while ``hera web`` runs,
and marks the matching claim in ``review_decisions`` refused, with that reason, so the page that
polls the item's status shows why (and the item may be decided again). Refusals at posting time
(e.g. a closed period) are not dead-lettered; ``queue.item_status`` finds those in the audit log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

from pipeline.config import Settings
from pipeline.envelopes import DLQ_HEADER_REASON, DLQ_HEADER_STAGE, headers_dict
from pipeline.ledger.tenancy import tenant_transaction
from pipeline.web.access import WebDB

log = logging.getLogger("hera.web.refusals")
RETRY_SECONDS = 5.0
POLL_TIMEOUT_MS = 1000
REVIEW_STAGE = "review"


def refusal_of(value: bytes | None, headers: Any) -> tuple[str, str, str] | None:
    """(organization_id, decision_id, reason) of a dead-lettered review decision, else None."""
    h = headers_dict(headers)
    if h.get(DLQ_HEADER_STAGE) != REVIEW_STAGE or not value:
        return None
    try:
        data = json.loads(value)
        org, decision_id = str(uuid.UUID(data["organization_id"])), str(uuid.UUID(data["decision_id"]))
    except (ValueError, TypeError, KeyError):
        return None
    return org, decision_id, h.get(DLQ_HEADER_REASON, "REFUSED")


async def mark(db: WebDB, org: str, decision_id: str, reason: str) -> bool:
    """Mark a sent decision refused (as the pipeline's role, acting for its organisation)."""
    async with db.pool.acquire() as conn, tenant_transaction(conn, [org]):
        return bool(await conn.fetchval(
            "UPDATE review_decisions SET state = 'refused', reason = $3 WHERE organization_id = $1"
            " AND decision_id = $2 AND state = 'sent' RETURNING true", uuid.UUID(org), uuid.UUID(decision_id),
            reason[:100]))


async def watch_refusals(settings: Settings, db: WebDB) -> None:
    """Run until cancelled; reconnects after broker errors."""
    from aiokafka import AIOKafkaConsumer

    from pipeline.brokers import client_kwargs

    while True:
        consumer = None
        try:
            consumer = AIOKafkaConsumer(settings.topic("deadletter"), **client_kwargs(settings), group_id=None,
                                        auto_offset_reset="latest", enable_auto_commit=False)
            await consumer.start()
            while True:
                batches = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS, max_records=500)
                for msgs in batches.values():
                    for m in msgs:
                        found = refusal_of(m.value, m.headers)
                        if found is not None and await mark(db, *found):
                            log.info("decision %s refused: %s", found[1], found[2])
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the broker may be down or not yet up: the web app stays up
            log.warning("watching refusals failed (%s); retrying in %ss", exc, RETRY_SECONDS)
            await asyncio.sleep(RETRY_SECONDS)
        finally:
            if consumer is not None:
                await consumer.stop()
