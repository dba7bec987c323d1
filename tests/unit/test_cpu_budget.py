"""hera bench's CPU accounting (pipeline/devtools/cpu_budget.py), on this test's own process."""

from __future__ import annotations

import os
import sys

import pytest

from pipeline.devtools.cpu_budget import CpuBudget, cpu_seconds

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def test_a_group_is_charged_the_cpu_its_processes_used_inside_the_window() -> None:
    budget = CpuBudget()
    budget.add("me", [os.getpid()])
    budget.add("nobody", [None])
    budget.start()
    before = cpu_seconds(os.getpid())
    sum(i * i for i in range(2_000_000))  # burn some CPU inside the window
    budget.stop()
    used = cpu_seconds(os.getpid())
    sum(i * i for i in range(2_000_000))  # and some after it, which must not count
    seconds = budget.seconds()
    assert before is not None and used is not None
    assert seconds["nobody"] is None
    assert 0 < seconds["me"] <= round(used - before, 3) + 0.02
    assert budget.per_event_ms(1000)["me"] == pytest.approx(seconds["me"], abs=1e-3)
