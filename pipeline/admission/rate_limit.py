"""Per-organisation rate limit: a token bucket whose whole state is two integers.

Why a token bucket: it allows a burst (``burst`` tokens in a full bucket) and then a steady rate
(``per_minute``), and its state is tiny, so it can live in a Faust table, survive a rebalance
through the changelog, and be decided deterministically from ``(state, limit, now)``.

Why integers: with floats, a hundred refills of 0.6 s land on either side of the boundary and
"the 101st event is admitted after 0.6 s" becomes a coin toss. Time is counted in whole
microseconds and credit in units of 1/60,000,000 of a token, so that a limit of ``r`` events per
minute accrues exactly ``r`` units per microsecond. All arithmetic is exact.

Why monotonic-safe: the bucket's clock (``at_us``) never moves backwards. If ``now`` goes back
(a rebalance onto a host with a slower clock, a replay), no credit accrues until time passes the
bucket's clock again, so a clock step can never grant extra tokens.

State (``BucketState``, JSON-safe)::

    {"credit": int,   # units of 1/UNITS_PER_TOKEN token, 0 <= credit <= burst * UNITS_PER_TOKEN
     "at_us": int}    # the bucket's clock, whole microseconds; never decreases

``None`` stands for a bucket never used: it is full.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from pipeline.domain.errors import InvariantViolation, ensure

__all__ = ["BURST_MAX", "PER_MINUTE_MAX", "UNITS_PER_TOKEN", "BucketState", "RateLimit", "admit",
           "ready_at", "to_micros"]

MICROS_PER_SECOND = 1_000_000
UNITS_PER_TOKEN = 60 * MICROS_PER_SECOND  # a limit of r per minute accrues exactly r units per µs
PER_MINUTE_MAX = 1_000_000
BURST_MAX = 1_000_000  # keeps credit < 2**53, so any JSON reader holds it exactly


class BucketState(TypedDict):
    credit: int
    at_us: int


@dataclass(frozen=True, slots=True)
class RateLimit:
    """``per_minute`` events per minute on average, up to ``burst`` at once from a full bucket."""

    per_minute: int
    burst: int

    def __post_init__(self) -> None:
        for name, value, top in (("per_minute", self.per_minute, PER_MINUTE_MAX),
                                 ("burst", self.burst, BURST_MAX)):
            ensure(type(value) is int and 1 <= value <= top, f"RateLimit.{name} must be an int in 1..{top}")


def to_micros(now: float) -> int:
    """Seconds to whole microseconds. Rounded, not floored: ``0.6 * 1e6`` may be 599999.99…"""
    return round(now * MICROS_PER_SECOND)


def _refill(state: BucketState | None, limit: RateLimit, now_us: int) -> BucketState:
    capacity = limit.burst * UNITS_PER_TOKEN
    if state is None:
        return {"credit": capacity, "at_us": now_us}
    credit, at_us = state["credit"], state["at_us"]
    if type(credit) is not int or credit < 0 or type(at_us) is not int:   # ensure(), the message built only if raised
        raise InvariantViolation(f"malformed bucket state {state!r}")
    elapsed_us = max(0, now_us - at_us)
    # min() also applies a lowered burst at once, even when no time has passed.
    return {"credit": min(capacity, credit + elapsed_us * limit.per_minute), "at_us": max(at_us, now_us)}


def _ready_us(bucket: BucketState, limit: RateLimit, tokens: int) -> int:
    """The bucket-clock microsecond at which ``tokens`` tokens will have accrued (no other spend)."""
    missing = tokens * UNITS_PER_TOKEN - bucket["credit"]
    if missing <= 0:
        return bucket["at_us"]
    return bucket["at_us"] + -(-missing // limit.per_minute)  # ceiling division, exact on ints


def admit(state: BucketState | None, limit: RateLimit, now: float,
          cost: int = 1) -> tuple[bool, BucketState, float]:
    """Take ``cost`` tokens if the bucket holds them.

    Returns ``(admitted, new_state, wait_seconds)``: ``wait_seconds`` is how long from ``now``
    until ``cost`` tokens will be available again (0.0 if they already are). On refusal the new
    state only reflects the refill, which is equivalent to the old state: callers need not store it.
    """
    if type(cost) is not int or not 1 <= cost <= limit.burst:   # ensure(), the message built only if raised
        raise InvariantViolation(f"cost must be an int in 1..burst, got {cost!r}")
    now_us = to_micros(now)
    bucket = _refill(state, limit, now_us)
    admitted = bucket["credit"] >= cost * UNITS_PER_TOKEN
    if admitted:
        bucket = {"credit": bucket["credit"] - cost * UNITS_PER_TOKEN, "at_us": bucket["at_us"]}
    wait_us = max(0, _ready_us(bucket, limit, cost) - now_us)
    return admitted, bucket, wait_us / MICROS_PER_SECOND


def ready_at(state: BucketState | None, limit: RateLimit, now: float, tokens: int = 1) -> float:
    """The time (seconds) at which ``tokens`` tokens will have accrued, if nothing else spends.

    ``tokens`` may exceed ``burst``: for the n-th event waiting in line, ``ready_at(…, tokens=n)``
    estimates when its turn comes, because the ones ahead spend tokens as fast as they accrue.
    Never earlier than ``now``; otherwise a whole microsecond, so that
    ``admit(state, limit, ready_at(state, limit, now))`` admits (``to_micros`` round-trips it).
    """
    if type(tokens) is not int or tokens < 1:   # ensure(), the message built only if raised
        raise InvariantViolation(f"tokens must be a positive int, got {tokens!r}")
    bucket = _refill(state, limit, to_micros(now))
    return max(now, _ready_us(bucket, limit, tokens) / MICROS_PER_SECOND)


# ---------------------------------------------------------------- an organisation's stored values

_LIMITS = {"rate_limit_per_minute": PER_MINUTE_MAX, "rate_limit_burst": BURST_MAX}


def _bad_int(name: str, value: Any, top: int) -> str | None:
    if type(value) is not int and not (isinstance(value, str) and value.isdigit()):
        return f"{name}={value!r}: must be a whole number"
    number = int(value)
    if not 1 <= number <= top:
        return f"{name}={number}: must be in 1..{top} (the token bucket's limit)"
    return None


def check_org_settings(conf: Mapping[str, Any]) -> list[str]:
    """One line per rate-limit setting of ``conf`` that cannot work, naming it (empty: all usable)."""
    problems = [_bad_int(name, conf[name], top) for name, top in _LIMITS.items() if name in conf]
    return [p for p in problems if p]


def rate_limit_values(conf: Mapping[str, Any], per_minute: int, burst: int) -> tuple[int, int]:
    """The organisation's (per_minute, burst), each replaced by the default when it cannot work
    (a value stored before it was checked never crash-loops an agent)."""
    values = []
    for name, default in (("rate_limit_per_minute", per_minute), ("rate_limit_burst", burst)):
        value = conf.get(name, default)
        values.append(default if _bad_int(name, value, _LIMITS[name]) else int(value))
    return values[0], values[1]
