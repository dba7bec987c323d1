"""Admission of validated events: deduplication and the per-organisation rate limit, as decisions.

Pure: the caller (a Faust agent) reads its tables, passes them in as mappings (only ``.get`` is
used) with ``now``, and writes back the returned ``Update``s. Nothing here reads the clock.

Each item gets exactly one ``Verdict``:

    admit      new event, within its organisation's limit: pass it on
    duplicate  exact redelivery of an event already admitted (same fingerprint, within the
               TTL): absorbed and counted, never dead-lettered (docs/contracts.md)
    conflict   same (organization_id, event_id), different content: dead letter
               ``DUPLICATE_CONFLICT``
    defer      over the limit, or the organisation already has events parked: park it (send to
               the deferred topic) with ``not_before`` and its parking ``seq``; ``readmit`` it later

Why a parked event is not a duplicate of anything yet: it has not been handled. Its dedupe record
carries its ticket (``seq``) and counts as absent; a copy that arrives while it is parked is parked
too and judged when its turn comes (by then the first copy is recorded, so it is a duplicate).
Crash-redelivery is told apart from a copy by the record's coordinates (``source``): the record
that admitted an event, back after a crash before its batch was acknowledged, is unfinished work
and is admitted again (posting is idempotent); the record that parked one gets its own ticket back. Within one batch a second occurrence
is judged against the first at once, parked or not. Entries older than the TTL count as absent;
PostgreSQL's unique (organization_id, event_id) stays the final guard after that.

Why parking tickets (``seq``) rather than a bare count: re-admission must keep each
organisation's order, and a consumer that re-publishes a still-too-early event to the tail of
the deferred topic would otherwise let the events behind it overtake. Each parked event takes
ticket ``tail``; only ticket ``head`` may re-enter; the others are deferred again. A ticket below
``head`` is stale (a redelivered deferred message): judged by dedupe, never moves the queue. If
the head ticket is not seen for ``gap_timeout_seconds`` (its message lost between a table write
and a produce), the queue skips forward: order is given up for that gap, no event is lost.

Fairness: buckets and queues are keyed by organisation, so one organisation's backlog never
changes another's verdicts. The raw topic is keyed by organisation, so an organisation's state
lives on one partition; an ``Update`` carries the partition of the item that caused it.

State values (JSON-safe; table names are the constants below)::

    DEDUPE_TABLE   "<org>\\x1f<event_id>" -> {"fp": str, "at": float, "src": str | None[, "seq": int while parked]}
    BUCKET_TABLE   "<org>" -> {"credit": int, "at_us": int}          (see resilience.rate_limit)
    BACKLOG_TABLE  "<org>" -> {"head": int, "tail": int, "seen_at": float}; parked = tail - head
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple, TypedDict

from pipeline.admission.rate_limit import BucketState, RateLimit, admit, ready_at
from pipeline.domain.errors import ensure
from pipeline.domain.outcomes import Reason

__all__ = ["BACKLOG_TABLE", "BATCH_SIZE_MAX", "BUCKET_TABLE", "DEDUPE_TABLE", "DEDUPE_TTL_SECONDS",
           "GAP_TIMEOUT_SECONDS", "Admission", "BacklogState", "Decisions", "DedupeRecord", "Item", "Parked",
           "Update", "Verdict", "decide", "dedupe_key", "dedupe_live", "readmit"]

DEDUPE_TABLE = "dedupe"
BUCKET_TABLE = "rate_bucket"
BACKLOG_TABLE = "rate_backlog"
DEDUPE_TTL_SECONDS = 7 * 24 * 3600.0
GAP_TIMEOUT_SECONDS = 600.0
BATCH_SIZE_MAX = 10_000
_SEP = "\x1f"  # organisation ids are UUIDs, so the first separator always splits the key correctly


class Verdict(StrEnum):
    ADMIT = "admit"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    DEFER = "defer"


class Item(NamedTuple):
    org_id: str
    event_id: str
    fingerprint: str
    partition: int


class Parked(NamedTuple):
    """A deferred event coming back, with the parking ticket its ``defer`` verdict gave it."""

    org_id: str
    event_id: str
    fingerprint: str
    partition: int
    seq: int


class DedupeRecord(TypedDict, total=False):
    fp: str
    at: float
    src: str | None  # the record that admitted (or parked) the event
    seq: int         # present while the event is parked: its ticket; it is not handled yet


class BacklogState(TypedDict):
    head: int
    tail: int
    seen_at: float


class Update(NamedTuple):
    """Write ``value`` at ``table[key]`` (changelog partition ``partition``)."""

    table: str
    key: str
    value: Any
    partition: int


@dataclass(frozen=True, slots=True)
class Admission:
    item: Item
    verdict: Verdict
    not_before: float | None = None  # defer only: earliest time worth re-trying
    seq: int | None = None           # defer only: parking ticket, to carry back into ``readmit``

    @property
    def reason(self) -> Reason | None:
        return Reason.DUPLICATE_CONFLICT if self.verdict is Verdict.CONFLICT else None


@dataclass(frozen=True, slots=True)
class Decisions:
    admissions: list[Admission]  # one per input item, in input order
    updates: list[Update]        # one per touched (table, key), last value wins

    def counts(self) -> Counter[str]:
        return Counter(a.verdict.value for a in self.admissions)


def dedupe_key(org_id: str, event_id: str) -> str:
    return f"{org_id}{_SEP}{event_id}"


def dedupe_live(record: DedupeRecord | None, now: float, ttl_seconds: float) -> bool:
    """True while a record still counts; a clock step backwards keeps it alive, never kills it."""
    return record is not None and now - record["at"] < ttl_seconds


class _View:
    """The caller's tables with this batch's pending writes on top."""

    def __init__(self, dedupe: Mapping[str, Any], buckets: Mapping[str, Any], backlog: Mapping[str, Any]):
        self._tables = {DEDUPE_TABLE: dedupe, BUCKET_TABLE: buckets, BACKLOG_TABLE: backlog}
        self._pending: dict[tuple[str, str], Update] = {}

    def get(self, table: str, key: str) -> Any:
        hit = self._pending.get((table, key))
        return hit.value if hit is not None else self._tables[table].get(key)

    def put(self, table: str, key: str, value: Any, partition: int) -> None:
        self._pending[(table, key)] = Update(table, key, value, partition)

    def updates(self) -> list[Update]:
        return list(self._pending.values())


def _judge(view: _View, item: Item, key: str, source: str | None, now: float, ttl_seconds: float) -> Verdict | None:
    """``key`` is the item's ``dedupe_key``."""
    record = view.get(DEDUPE_TABLE, key)
    if not dedupe_live(record, now, ttl_seconds) or "seq" in record:  # absent, expired, or only parked
        return None
    if source is not None and record.get("src") == source:
        # the record that admitted it, back after a crash before its batch was acknowledged: not a
        # copy but unfinished work, admitted again (its token is spent; posting is idempotent)
        return Verdict.ADMIT
    return Verdict.DUPLICATE if record["fp"] == item.fingerprint else Verdict.CONFLICT


def _parked_before(view: _View, key: str, source: str | None, queue: BacklogState) -> int | None:
    """The ticket this very record was parked with, if it is back after a crash before its batch
    was acknowledged (and the ticket is still in line): it keeps that ticket, so the queue does not
    wait for a ticket whose message was never produced. ``key`` is the item's ``dedupe_key``."""
    record = view.get(DEDUPE_TABLE, key)
    if source is None or record is None or "seq" not in record or record.get("src") != source:
        return None
    seq = record["seq"]
    return seq if queue["head"] <= seq < queue["tail"] else None


def _queue(view: _View, org: str, now: float) -> BacklogState:
    queue: BacklogState | None = view.get(BACKLOG_TABLE, org)
    return queue if queue is not None else {"head": 0, "tail": 0, "seen_at": now}


def _record(item: Item, source: str | None, now: float) -> DedupeRecord:
    record: DedupeRecord = {"fp": item.fingerprint, "at": now}
    if source is not None:
        record["src"] = source
    return record


def _take(view: _View, item: Item, key: str, source: str | None, limit: RateLimit, now: float) -> bool:
    """Take a token; on success record the event (its ``dedupe_key`` is ``key``) as handled."""
    admitted, bucket, _ = admit(view.get(BUCKET_TABLE, item.org_id), limit, now)
    if admitted:
        view.put(BUCKET_TABLE, item.org_id, bucket, item.partition)
        view.put(DEDUPE_TABLE, key, _record(item, source, now), item.partition)
    return admitted


def _turn_at(view: _View, org: str, limit: RateLimit, now: float, place: int) -> float:
    """When the event ``place`` tokens from now (1 = next) can expect its turn."""
    bucket: BucketState | None = view.get(BUCKET_TABLE, org)
    return ready_at(bucket, limit, now, tokens=place)


def _check_args(count: int, now: float, ttl_seconds: float) -> None:
    ensure(count <= BATCH_SIZE_MAX, f"batch of {count} exceeds BATCH_SIZE_MAX={BATCH_SIZE_MAX}")
    ensure(now == now and ttl_seconds > 0, "now must be a number and ttl_seconds positive")


def decide(items: Sequence[tuple[str, str, str, int]], *, dedupe: Mapping[str, Any], buckets: Mapping[str, Any],
           backlog: Mapping[str, Any], limit_of: Callable[[str], RateLimit], now: float,
           ttl_seconds: float = DEDUPE_TTL_SECONDS, sources: Sequence[str | None] | None = None) -> Decisions:
    """Verdicts for a batch of new validated events ``(org_id, event_id, fingerprint, partition)``;
    ``sources``, when given, names the Kafka record each came in (to tell crash-redelivery apart)."""
    _check_args(len(items), now, ttl_seconds)
    ensure(sources is None or len(sources) == len(items), "one source per item")
    view = _View(dedupe, buckets, backlog)
    parked_here: dict[str, str] = {}  # dedupe key -> fingerprint, for events parked in this batch
    out: list[Admission] = []
    for raw, source in zip(items, sources or [None] * len(items), strict=True):
        item = Item(*raw)
        key = dedupe_key(item.org_id, item.event_id)
        verdict = _judge(view, item, key, source, now, ttl_seconds)
        if verdict is None and key in parked_here:
            verdict = Verdict.DUPLICATE if parked_here[key] == item.fingerprint else Verdict.CONFLICT
        if verdict is not None:
            out.append(Admission(item, verdict))
            continue
        limit = limit_of(item.org_id)
        queue = _queue(view, item.org_id, now)
        again = _parked_before(view, key, source, queue)
        if again is not None:
            parked_here[key] = item.fingerprint
            not_before = _turn_at(view, item.org_id, limit, now, again - queue["head"] + 1)
            out.append(Admission(item, Verdict.DEFER, not_before, again))
            continue
        if queue["head"] == queue["tail"] and _take(view, item, key, source, limit, now):
            out.append(Admission(item, Verdict.ADMIT))
            continue
        seq = queue["tail"]
        seen_at = now if queue["head"] == queue["tail"] else queue["seen_at"]
        view.put(BACKLOG_TABLE, item.org_id, {"head": queue["head"], "tail": seq + 1, "seen_at": seen_at},
                 item.partition)
        parked_here[key] = item.fingerprint
        view.put(DEDUPE_TABLE, key, {**_record(item, source, now), "seq": seq}, item.partition)
        not_before = _turn_at(view, item.org_id, limit, now, seq - queue["head"] + 1)
        out.append(Admission(item, Verdict.DEFER, not_before, seq))
    return Decisions(out, view.updates())


def readmit(parked: Sequence[tuple[str, str, str, int, int]], *, dedupe: Mapping[str, Any],
            buckets: Mapping[str, Any], backlog: Mapping[str, Any], limit_of: Callable[[str], RateLimit],
            now: float, ttl_seconds: float = DEDUPE_TTL_SECONDS,
            gap_timeout_seconds: float = GAP_TIMEOUT_SECONDS, sources: Sequence[str | None] | None = None
            ) -> Decisions:
    """Verdicts for parked events coming back from the deferred topic, ``(…, partition, seq)``.

    Only the head ticket of its organisation's queue may re-enter: it is judged by dedupe first
    (a duplicate or conflict leaves the queue without spending a token), then takes a token or is
    deferred again with the same ticket. Re-deferring never grows the queue.
    """
    _check_args(len(parked), now, ttl_seconds)
    ensure(gap_timeout_seconds > 0, "gap_timeout_seconds must be positive")
    view = _View(dedupe, buckets, backlog)
    ensure(sources is None or len(sources) == len(parked), "one source per parked item")
    out = [_readmit_one(view, Parked(*raw), source, limit_of, now, ttl_seconds, gap_timeout_seconds)
           for raw, source in zip(parked, sources or [None] * len(parked), strict=True)]
    return Decisions(out, view.updates())


def _readmit_one(view: _View, back: Parked, source: str | None, limit_of: Callable[[str], RateLimit], now: float,
                 ttl_seconds: float, gap_timeout_seconds: float) -> Admission:
    item = Item(*back[:4])
    org, seq, partition = item.org_id, back.seq, item.partition
    limit = limit_of(org)
    queue = _queue(view, org, now)
    ensure(type(seq) is int and 0 <= seq < queue["tail"],
           f"parking ticket {seq!r} of {org} was never issued (tail {queue['tail']})")
    if seq > queue["head"] and now - queue["seen_at"] >= gap_timeout_seconds:
        queue = {"head": seq, "tail": queue["tail"], "seen_at": now}  # the head is lost: skip the gap
        view.put(BACKLOG_TABLE, org, queue, partition)
    if seq > queue["head"]:  # not its turn yet: back in line with the same ticket
        return Admission(item, Verdict.DEFER, _turn_at(view, org, limit, now, seq - queue["head"] + 1), seq)
    # the head, or a stale ticket (seq < head) that is judged but never moves the queue
    key = dedupe_key(org, item.event_id)
    verdict = _judge(view, item, key, source, now, ttl_seconds)
    if verdict is None:
        verdict = Verdict.ADMIT if _take(view, item, key, source, limit, now) else Verdict.DEFER
    if seq == queue["head"]:
        head = seq if verdict is Verdict.DEFER else seq + 1
        view.put(BACKLOG_TABLE, org, {"head": head, "tail": queue["tail"], "seen_at": now}, partition)
    if verdict is Verdict.DEFER:
        return Admission(item, verdict, _turn_at(view, org, limit, now, 1), seq)
    return Admission(item, verdict)
