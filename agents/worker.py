"""Start a Faust worker for the pipeline (``hera run``): topics first, then the agents.

SIGTERM or Ctrl-C stops it cleanly: Faust commits what was acked and leaves the group.
"""

from __future__ import annotations

import asyncio
import gc
import logging

from pipeline.brokers import check_connection, ensure_topics
from pipeline.config import Settings


def prepare(settings: Settings) -> None:
    """Create the pipeline's topics with the configured partitions, and migrate the database."""
    from pipeline.ledger.migrate import migrate

    async def _prepare() -> None:
        await check_connection(settings)  # one clear line for a wrong address, protocol or password
        await ensure_topics(settings)
        await migrate(settings.dsn())

    asyncio.run(_prepare())


def run_worker(settings: Settings) -> None:
    from faust.worker import Worker

    from agents.app import create_app

    prepare(settings)
    if settings.metrics_port is not None:
        from prometheus_client import start_http_server
        start_http_server(settings.metrics_port, addr="0.0.0.0")
    app = create_app(settings)
    # what start-up built (the model, catalog, caches, modules) is kept for the worker's life: move it out
    # of the cyclic collector's reach, so collections during batches scan only what batches allocate
    gc.collect()
    gc.freeze()
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    worker = Worker(app, loglevel=settings.log_level.upper(), quiet=True, redirect_stdouts=False,
                    override_logging=True)
    worker.execute_from_commandline()
