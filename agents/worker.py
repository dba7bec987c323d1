"""Start a Faust worker for the pipeline (``hera run``): topics first, then the agents.

SIGTERM or Ctrl-C stops it cleanly: Faust commits what was acked and leaves the group.
"""

from __future__ import annotations

import asyncio
import gc

from agents import tuning
from pipeline.brokers import check_connection, ensure_topics
from pipeline.config import Settings, SettingsError


def prepare(settings: Settings) -> None:
    """Create the pipeline's topics with the configured partitions, and migrate the database."""
    from pipeline.ledger.migrate import migrate

    async def _prepare() -> None:
        await check_connection(settings)  # one clear line for a wrong address, protocol or password
        await ensure_topics(settings)
        await migrate(settings.dsn())
        if settings.worker_login_embedded:   # the worker logs in as hera_worker (pipeline.ledger.roles)
            from pipeline.ledger.roles import set_worker_password
            await set_worker_password(settings.dsn(), settings.embedded_worker_password())

    asyncio.run(_prepare())


def refuse_privileged_login(settings: Settings) -> None:
    """Stop, in one line, if the worker's database login is a superuser, has BYPASSRLS or owns the
    ledger: row-level security would not bind it (SECURITY.md §2)."""
    from pipeline.ledger.roles import WorkerLoginError, check_worker_login

    try:
        asyncio.run(check_worker_login(settings.worker_dsn()))
    except WorkerLoginError as exc:
        raise SystemExit(f"hera: {exc}") from None


def use_event_loop(name: str) -> None:
    """Run the worker's agents on ``name``'s event loop (``HERA_EVENT_LOOP``: asyncio or uvloop)."""
    if name == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    else:
        asyncio.set_event_loop_policy(None)


def run_worker(settings: Settings) -> None:
    from faust.worker import Worker

    from agents import observe
    from agents.app import create_app
    from pipeline.ledger.cache import CacheConfigError, OrgCaches
    from pipeline.observability import logs
    from pipeline.observability.health import Health, serve

    try:
        settings.check()   # a setting that cannot work stops here, in one line, not in a crash-looping agent
    except SettingsError as exc:
        raise SystemExit(f"hera: {exc}") from None
    logs.configure(settings.log_format, settings.log_level, logs.settings_secrets(settings))  # Faust's too
    try:
        OrgCaches.from_url(settings.cache_url)  # a cache setting that cannot work is refused now, in one line
    except CacheConfigError as err:
        raise SystemExit(f"hera: {err}") from None
    health = Health()  # /livez /readyz /startupz /metrics: answering (starting) before the slow part
    if settings.metrics_port is not None:
        try:
            serve(health, settings.metrics_port, settings.metrics_host)
        except OSError as err:
            raise SystemExit(f"hera: HERA_METRICS_PORT={settings.metrics_port} on HERA_METRICS_HOST="
                             f"{settings.metrics_host}: {err.strerror or err}") from None
    if settings.prepare_on_start:
        prepare(settings)
    refuse_privileged_login(settings)
    use_event_loop(settings.event_loop)
    app = create_app(settings)
    observe.install(app, settings, health)  # probes' checks, lag and backlog gauges, back-pressure
    # what start-up built (the model, catalog, caches, modules) is kept for the worker's life: move it out
    # of the cyclic collector's reach, so collections during batches scan only what batches allocate
    gc.collect()
    gc.freeze()
    gc.set_threshold(*tuning.GC_THRESHOLDS)
    worker = Worker(app, loglevel=settings.log_level.upper(), quiet=True, redirect_stdouts=False,
                    override_logging=False)
    worker.spinner = None  # a terminal spinner writes cursor escapes into the log (logging is ours: logs.configure)
    worker.execute_from_commandline()
