"""The Faust app factory: settings in, app with topics declared and agents registered out.

Faust choices and why (see NOTES.md for the measurements behind them):
* raw bytes in and out (``value_serializer="raw"``): the validate stage needs the original bytes for
  the dead-letter topic, and JSON is encoded by us, never pickle;
* short session/heartbeat/rebalance timeouts so a restarted worker rejoins in seconds;
* every agent consumes with ``take_events`` and concurrency 1 (Faust loses messages with
  concurrency > 1, faust-streaming#606); its body never raises (Faust acks a message whose agent
  raised): failures are retried, then bisected and dead-lettered as POISON;
* topics are created by ``ensure_topics`` before a worker starts (Faust would create 1 partition);
* ``agents.faust_fixes`` patches Faust's seek to committed offsets after a rebalance, which left
  records delivered during the seek never processed (issue 5).
"""

from __future__ import annotations

from pathlib import Path

import faust

from agents import patches
from pipeline.brokers import faust_credentials
from pipeline.config import TOPICS, Settings


def faust_broker_url(bootstrap: str) -> str:
    return ";".join(f"kafka://{host.strip()}" for host in bootstrap.split(",") if host.strip())


def create_app(settings: Settings, *, register_agents: bool = True) -> faust.App:
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
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
        producer_linger=0.005,
        producer_max_request_size=2_000_000,
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
