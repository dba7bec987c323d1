"""Resilience algorithms as pure functions: rate limiting now; circuit breaker and retry later.

Nothing here reads the clock or does I/O. Time comes in as ``now`` (seconds, float) and state
comes in and goes out as small JSON-safe values, so a Faust agent can keep it in a table and
replicate it through the table's changelog.
"""
