"""The rooms' layering (pyproject's import-linter contract) holds, and the check can fail."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def _lint(where: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", LINT],
        cwd=where,
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(where), "PATH": "/usr/bin:/bin"},
    )


def test_imports_point_downwards() -> None:
    run = _lint(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr


def test_an_upward_import_breaks_the_contract(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    copy.mkdir()
    shutil.copy(ROOT / "pyproject.toml", copy)
    shutil.copytree(ROOT / "builder", copy / "builder")
    values = copy / "builder" / "spec" / "values.py"
    values.write_text(values.read_text() + "\nfrom builder.cli import main  # noqa\n")
    run = _lint(copy)
    assert run.returncode != 0
    assert "builder.spec is not allowed to import builder.cli" in run.stdout
