"""Every latency knob of a worker's Kafka clients, in one place, with why it has its value.

The values are ``Settings`` fields (``HERA_`` environment); this module turns them into what Faust
and aiokafka take. Measured effects are in BENCHMARKS.md ("Latency").

* ``kafka_fetch_max_wait_ms`` (100): how long the broker may hold a fetch that found no new records.
  Apache Kafka answers a waiting fetch as soon as records arrive, so this is not on the latency path
  there: it sets how often an idle consumer asks (10 times a second). Faust hard-codes 1,500 ms; a
  broker that answers a waiting fetch only at its deadline would delay an event arriving at an idle
  worker by up to that long, so it is a setting (lower it for such a broker).
* ``producer_linger_ms`` (0): how long the producer waits to fill a record batch. The worker already
  produces a batch's messages together (``agents/outbox.py``), so waiting adds latency and saves
  nothing.
* ``producer_batch_bytes`` (512 KiB): the largest record batch the worker writes to one partition
  (Faust's default is 16 KiB). A batch's outputs go to each partition as record batches of at most
  this size, one after the other: the producer starts a partition's next record batch only once the
  previous one has been sent, and sends one request at a time to a broker, so a 1,000-event batch's
  outputs (a few MB) in 16 KiB pieces took a dozen round trips one after the other. Keep it below the
  broker's and topics' ``message.max.bytes`` (1 MiB by default). The request cap
  (``PRODUCER_REQUEST_BYTES``) lets a whole batch's outputs go in one or two requests.
* ``producer_compression`` (none): lz4 makes the produced batches about four times smaller, but on
  one machine the bytes are cheap and the compression is not, so the default leaves them as they
  are; across a network to a managed cluster, lz4 or zstd is usually worth it.
* ``event_loop`` (asyncio): the worker's agents can run on uvloop instead (``agents/worker.py``).
  On this project's 2-core machine it measured no better, within run-to-run noise, for throughput or
  latency, so the standard library's loop stays the default.
* ``commit_interval_seconds`` (0.25): how often released offsets are committed. Not on the latency
  path (outputs are published before offsets are released); shorter means less redelivered work
  after a crash, at one small request per interval.
* ``batch_size_max``: the cap of a batch; batches close as soon as nothing more is buffered
  (``agents/source.py``), so the cap only matters under backlog, where large batches give the
  throughput.
* ``batch_in_flight_max`` (2): one batch's database write and publish overlap the next batch's
  validation and classification, and the next batch's write (``agents/runner.py``).
* ``batch_in_flight_backlog_max`` (2): the same for batches of at least half ``batch_size_max``
  (a backlog): large batches spend most of their time waiting on PostgreSQL and the broker, so more
  of them in flight keeps the worker busy; small ones would pay their fixed costs more often.
* ``PROCESS_CHUNK`` (250, a constant): a batch's validation and classification run in chunks of this
  many records, and the event loop runs between chunks. They are pure CPU; run whole on a batch of
  1,000 they held the loop for a quarter of a second, and the earlier batch's database transaction,
  which needs the loop to read each answer, stalled that long at each of its round trips.
* ``GC_THRESHOLDS`` ((50000, 20, 100), a constant): the worker's cyclic garbage collector runs its
  youngest generation after 50,000 net allocations instead of Python's 700 (``agents/worker.py``,
  after freezing what start-up built). A batch allocates hundreds of thousands of short-lived
  objects, nearly all freed by reference counting; collecting every 700 of them cost about a tenth of
  the CPU of validation and classification (``benchmarks/hotpath_bench.py``). What cycles there are
  wait a little longer: tens of thousands of small objects at most.
* ``table_standby_replicas`` (0): how many other workers keep a standby copy of each partition of
  the admission tables (dedupe, rate buckets, rate backlog). Faust's default is 1: every worker then
  also reads every other worker's changelog records and applies them, one for each event it admits,
  which cost two workers about a fifth of their CPU per event (``hera bench --events 30000 --workers
  2``). With 0, as Kafka Streams' ``num.standby.replicas`` defaults, a worker that takes over a
  partition after a rebalance rebuilds its tables from the compacted changelog before it handles
  the partition's records: nothing is lost or admitted twice either way, the takeover is only
  slower. Set 1 where a quick failover matters more than throughput.
* ``audit_linger_ms`` (250): the audit agent's batches stay open this long. Nobody waits for an
  audit record, and each batch is one transaction holding its organisations' chain heads, which the
  posting transactions need too: fewer, larger appends leave them free more often.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

from pipeline.config import Settings

#: the producer's cap on one request (Faust's default is 1 MB); brokers accept 100 MiB by default
#: (``socket.request.max.bytes``)
PRODUCER_REQUEST_BYTES = 8 * 1024 * 1024

_fetch_max_wait_ms: int | None = None  # set by ``apply``; None: Faust's own value

#: upstream code this module and ``agents/source.py`` replace or copy (checked like agents/patches.py's,
#: by tests/unit/test_tuning.py): the consumer factory patched here, and the ``take_events`` machinery
#: that ``ready_batches`` follows
UPSTREAM = {
    "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread._create_worker_consumer": "684c167041ff0044",
    "faust.streams:Stream.take_events": "1e784df57c46331d",
    "faust.streams:Stream._enable_passive": "e89c3846ccd7300a",
    "faust.streams:Stream.add_processor": "6a735256dc859830",
}


PROCESS_CHUNK = 250
GC_THRESHOLDS = (50_000, 20, 100)

T = TypeVar("T")


def chunks(items: list[T], size: int = PROCESS_CHUNK) -> Iterator[list[T]]:
    """``items`` in consecutive chunks of at most ``size`` (one chunk when it is short)."""
    if len(items) <= size:
        yield items
        return
    for start in range(0, len(items), size):
        yield items[start:start + size]


def faust_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of ``faust.App`` that set latency."""
    return {
        "broker_commit_interval": settings.commit_interval_seconds,
        "producer_linger": settings.producer_linger_ms / 1000.0,
        "producer_max_batch_size": settings.producer_batch_bytes,
        "producer_max_request_size": max(PRODUCER_REQUEST_BYTES, 2 * settings.producer_batch_bytes),
        "stream_wait_empty": False,
        "table_standby_replicas": settings.table_standby_replicas,
        "producer_compression_type": None if settings.producer_compression == "none" else settings.producer_compression,
    }


def apply(settings: Settings) -> None:
    """Give the worker's consumer ``kafka_fetch_max_wait_ms`` (Faust passes a fixed 1,500 ms):
    set on the consumer object as it is created, before it starts its fetcher."""
    global _fetch_max_wait_ms
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    from agents.patches import check_versions

    check_versions()  # the same gate as every other change to Faust's code
    if _fetch_max_wait_ms is None:
        create = AIOKafkaConsumerThread._create_worker_consumer

        def create_worker_consumer(self: Any, transport: Any) -> Any:
            consumer = create(self, transport)
            if _fetch_max_wait_ms is not None:
                consumer._fetch_max_wait_ms = _fetch_max_wait_ms
            return consumer

        AIOKafkaConsumerThread._create_worker_consumer = create_worker_consumer  # type: ignore[method-assign]
    _fetch_max_wait_ms = settings.kafka_fetch_max_wait_ms
