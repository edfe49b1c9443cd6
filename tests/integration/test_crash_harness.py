"""A short run of the crash harness (benchmarks/reliability/crash.py): kills, SIGINTs, races."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import require_tool

HARNESS = Path(__file__).parents[2] / "benchmarks" / "reliability" / "crash.py"


def test_short_crash_run_leaves_valid_layouts_and_no_temps() -> None:
    require_tool("umoci")
    require_tool("skopeo")
    command = [sys.executable, str(HARNESS), "--kills", "3", "--sigints", "3", "--rounds", "2"]
    result = subprocess.run([*command, "--json"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(result.stdout[result.stdout.index("{") :])
    kill, sigint, race = figures["kill"], figures["sigint"], figures["race"]
    assert (kill["valid"], kill["clean"]) == (3, 3)
    assert (sigint["valid"], sigint["clean"]) == (3, 3)
    assert sigint["exited_130"] + sigint["finished"] + sigint["python_startup"] == 3
    assert race["kept_all"] == 2
