"""An organisation's own settings (``core_organizations.settings``: rate limit, thresholds, caps,
account overrides) checked against the domain's limits, so that a bad value set with
``hera org set`` is refused there, and one already stored never crash-loops an agent.

    check_org_settings(conf) -> ["rate_limit_per_minute=100000000: at most 1000000 …", …]
    rate_limit_values(conf, per_minute, burst) -> the values to use (the defaults for a bad one)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.resilience.rate_limit import BURST_MAX, PER_MINUTE_MAX

_LIMITS = {"rate_limit_per_minute": PER_MINUTE_MAX, "rate_limit_burst": BURST_MAX}


def _bad_int(name: str, value: Any, top: int) -> str | None:
    if type(value) is not int and not (isinstance(value, str) and value.isdigit()):
        return f"{name}={value!r}: must be a whole number"
    number = int(value)
    if not 1 <= number <= top:
        return f"{name}={number}: must be in 1..{top} (the token bucket's limit)"
    return None


def check_org_settings(conf: Mapping[str, Any]) -> list[str]:
    """One line per setting of ``conf`` that cannot work, naming it (empty: all usable)."""
    problems = [_bad_int(name, conf[name], top) for name, top in _LIMITS.items() if name in conf]
    return [p for p in problems if p]


def rate_limit_values(conf: Mapping[str, Any], per_minute: int, burst: int) -> tuple[int, int]:
    """The organisation's (per_minute, burst), each replaced by the default when it cannot work."""
    values = []
    for name, default in (("rate_limit_per_minute", per_minute), ("rate_limit_burst", burst)):
        value = conf.get(name, default)
        values.append(default if _bad_int(name, value, _LIMITS[name]) else int(value))
    return values[0], values[1]
