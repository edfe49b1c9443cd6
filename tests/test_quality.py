"""The style rules as tests: mypy --strict on builder/, ruff on everything, formatted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "command",
    [
        ["mypy"],
        ["ruff", "check", "builder", "tests", "benchmarks", "scripts"],
        ["ruff", "format", "--check", "builder", "tests", "benchmarks", "scripts"],
    ],
    ids=["mypy", "ruff-check", "ruff-format"],
)
def test_code_is_clean(command: list[str]) -> None:
    run = subprocess.run(
        [sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr
