"""A short run of the flaky-network harness (benchmarks/reliability/pushes.py)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.reliability.pushes import MiB, run
from tests.conftest import require_tool
from tests.integration.fault_proxy import Fault


def test_pushes_through_faults_and_restarts_read_back_identical(tmp_path: Path) -> None:
    """15 % of the requests faulted, 4 % of all restarting the registry, and one restart
    for certain: in the middle of the first chunk."""
    require_tool("docker-registry")
    first_chunk = Fault("restart", "PATCH", after=100_000)
    outcome = run(
        pushes=2,
        rate=0.15,
        seed=7,
        work=tmp_path,
        unique_size=3 * MiB,
        restart_rate=0.04,
        armed=(first_chunk,),
    )
    assert outcome.faults["restart"] >= 1, outcome.summary(2, 0.15)
    assert sum(outcome.faults.values()) > 0, outcome.summary(2, 0.15)
    assert outcome.restarts >= 1, outcome.summary(2, 0.15)
    assert outcome.failures == [] and outcome.mismatches == []
    assert outcome.pushed == outcome.identical == 2
