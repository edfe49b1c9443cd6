"""A short run of the flaky-network harness (benchmarks/reliability/pushes.py)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.reliability.pushes import MiB, run
from tests.conftest import require_tool


def test_pushes_through_faults_and_restarts_read_back_identical(tmp_path: Path) -> None:
    """15 % of the requests faulted; 4 % of all (about 6 in a run) restart the registry."""
    require_tool("docker-registry")
    outcome = run(
        pushes=2, rate=0.15, seed=7, work=tmp_path, unique_size=3 * MiB, restart_rate=0.04
    )
    assert sum(outcome.faults.values()) > 0, outcome.summary(2, 0.15)
    assert outcome.restarts >= 1, outcome.summary(2, 0.15)
    assert outcome.failures == [] and outcome.mismatches == []
    assert outcome.pushed == outcome.identical == 2
