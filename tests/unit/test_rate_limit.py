"""Token bucket: burst, then steady rate, exact at the boundaries, never fooled by a clock step back."""

from __future__ import annotations

import json

import pytest

from pipeline.admission.rate_limit import UNITS_PER_TOKEN, BucketState, RateLimit, admit, ready_at
from pipeline.domain.errors import InvariantViolation

DEFAULT = RateLimit(per_minute=100, burst=100)


def drain(state: BucketState | None, limit: RateLimit, now: float) -> tuple[int, BucketState]:
    """Admit at ``now`` until refused; return how many were admitted and the state."""
    count = 0
    while True:
        admitted, new, _ = admit(state, limit, now)
        if not admitted:
            return count, new
        count, state = count + 1, new


def test_burst_then_the_101st_waits_exactly_one_interval() -> None:
    count, state = drain(None, DEFAULT, 0.0)
    assert count == 100
    admitted, after, wait = admit(state, DEFAULT, 0.0)
    assert (admitted, wait, after) == (False, 0.6, state)
    assert admit(state, DEFAULT, 0.599999)[0] is False
    admitted, state, wait = admit(state, DEFAULT, 0.6)
    assert admitted and wait == 0.6
    assert admit(state, DEFAULT, 0.6)[0] is False
    assert admit(state, DEFAULT, 1.2)[0] is True


def test_steady_rate_after_the_burst_is_per_minute() -> None:
    _, state = drain(None, DEFAULT, 0.0)
    admitted = 0
    for step in range(1, 6001):  # every 10 ms for one minute
        ok, state, _ = admit(state, DEFAULT, step * 0.01)
        admitted += ok
    assert admitted == 100


def test_refill_never_exceeds_the_burst() -> None:
    _, state = drain(None, DEFAULT, 0.0)
    count, _ = drain(state, DEFAULT, 3600.0)
    assert count == 100


def test_fresh_bucket_is_full_and_reports_no_wait() -> None:
    admitted, state, wait = admit(None, RateLimit(per_minute=10, burst=3), 5.0)
    assert admitted and wait == 0.0
    assert state == {"credit": 2 * UNITS_PER_TOKEN, "at_us": 5_000_000}


def test_clock_going_backwards_grants_nothing() -> None:
    _, state = drain(None, DEFAULT, 100.0)
    admitted, back, wait = admit(state, DEFAULT, 50.0)
    assert not admitted
    assert back["at_us"] == 100_000_000  # the bucket's clock did not move back
    assert wait == pytest.approx(50.6)
    assert admit(back, DEFAULT, 100.0)[0] is False
    assert admit(back, DEFAULT, 100.6)[0] is True


def test_a_non_integral_interval_is_exact_to_the_microsecond() -> None:
    limit = RateLimit(per_minute=7, burst=1)
    _, state, _ = admit(None, limit, 0.0)
    at = ready_at(state, limit, 0.0)
    assert at == 8.571429  # ceil(60 / 7 s) to the microsecond
    assert admit(state, limit, at - 0.000001)[0] is False
    assert admit(state, limit, at)[0] is True


def test_ready_at_counts_the_queue_beyond_the_burst() -> None:
    _, state = drain(None, DEFAULT, 0.0)
    assert ready_at(state, DEFAULT, 0.0, tokens=1) == 0.6
    assert ready_at(state, DEFAULT, 0.0, tokens=250) == 150.0
    assert ready_at(None, DEFAULT, 7.0) == 7.0


def test_a_lowered_burst_applies_at_once() -> None:
    _, state, _ = admit(None, DEFAULT, 0.0)
    count, _ = drain(state, RateLimit(per_minute=100, burst=5), 0.0)
    assert count == 5


def test_cost_takes_several_tokens() -> None:
    limit = RateLimit(per_minute=60, burst=5)
    admitted, state, _ = admit(None, limit, 0.0, cost=4)
    assert admitted
    admitted, state, wait = admit(state, limit, 0.0, cost=2)
    assert not admitted and wait == 1.0


def test_state_is_json_safe_and_survives_a_round_trip() -> None:
    _, state = drain(None, DEFAULT, 12.345678)
    restored = json.loads(json.dumps(state))
    assert admit(restored, DEFAULT, 13.0) == admit(state, DEFAULT, 13.0)


@pytest.mark.parametrize("kwargs", [
    {"per_minute": 0, "burst": 1}, {"per_minute": 1, "burst": 0}, {"per_minute": True, "burst": 1},
    {"per_minute": 1.5, "burst": 1}, {"per_minute": 1, "burst": 10**7},
])
def test_limits_are_checked(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvariantViolation):
        RateLimit(**kwargs)  # type: ignore[arg-type]


def test_cost_beyond_the_burst_is_a_bug() -> None:
    with pytest.raises(InvariantViolation):
        admit(None, RateLimit(per_minute=10, burst=2), 0.0, cost=3)
    with pytest.raises(InvariantViolation):
        ready_at(None, DEFAULT, 0.0, tokens=0)


def test_malformed_state_is_refused() -> None:
    with pytest.raises(InvariantViolation):
        admit({"credit": -1, "at_us": 0}, DEFAULT, 0.0)
