"""A short run of the flaky-network harness (benchmarks/reliability/pushes.py)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.reliability.pushes import MiB, run
from tests.conftest import require_tool


def test_pushes_through_faults_read_back_identical(tmp_path: Path) -> None:
    require_tool("docker-registry")
    outcome = run(pushes=2, rate=0.15, seed=7, work=tmp_path, unique_size=3 * MiB)
    assert sum(outcome.faults.values()) > 0, outcome.summary(2, 0.15)
    assert outcome.failures == [] and outcome.mismatches == []
    assert outcome.pushed == outcome.identical == 2
