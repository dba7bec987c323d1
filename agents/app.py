"""The Faust app factory: settings in, app with topics declared and agents registered out.

Faust choices and why (measurements behind them: BENCHMARKS.md):
* raw bytes in and out (``value_serializer="raw"``): the validate stage needs the original bytes for
  the dead-letter topic, and JSON is encoded by us, never pickle;
* short session/heartbeat/rebalance timeouts so a restarted worker rejoins in seconds;
* every agent runs ``agents/runner.py`` over batches that close when nothing more is buffered
  (``agents/source.py``), with concurrency 1 (Faust loses messages with concurrency > 1,
  faust-streaming#606); a message that breaks a step is dead-lettered as POISON
  (``agents/failure.py``), and records are acked only once their batch is durable and published;
* latency settings (fetch wait, linger, commit interval) come from ``agents/tuning.py``;
* topics are created by ``ensure_topics`` before a worker starts (Faust would create 1 partition);
* ``agents.faust_fixes`` patches Faust's seek to committed offsets after a rebalance, which left
  records delivered during the seek never processed.
"""

from __future__ import annotations

from pathlib import Path

import faust

from agents import patches, tuning
from pipeline.brokers import faust_credentials
from pipeline.config import TOPICS, Settings


def faust_broker_url(bootstrap: str) -> str:
    return ";".join(f"kafka://{host.strip()}" for host in bootstrap.split(",") if host.strip())


def create_app(settings: Settings, *, register_agents: bool = True) -> faust.App:
    tuning.apply(settings)
    datadir = Path(settings.home).resolve() / "faust" / settings.worker_id
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        f"{settings.topic_prefix}{settings.app_id}",  # group id and changelog topics follow the prefix
        broker=faust_broker_url(settings.bootstrap()),
        broker_credentials=faust_credentials(settings),
        store="memory://",
        datadir=str(datadir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        topic_allow_declare=True,
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=settings.web_port is not None,
        web_port=settings.web_port or 6066,
        web_bind="127.0.0.1",
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=settings.heartbeat_interval_seconds,
        broker_rebalance_timeout=settings.session_timeout_seconds,
        consumer_auto_offset_reset="earliest",
        **tuning.faust_options(settings),
        consumer_max_fetch_size=16 * 1024 * 1024,
        logging_config=None,
    )
    app.hera_settings = settings  # type: ignore[attr-defined]
    patches.install(app, settings)  # version-gated fixes and speed-ups of Faust: see agents/patches.py
    if register_agents:
        from agents import stages

        stages.register(app, settings)
    return app


def topic_names(settings: Settings) -> list[str]:
    return [settings.topic(key) for key in TOPICS]
