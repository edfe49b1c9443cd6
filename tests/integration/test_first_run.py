"""README command 1, run as written in a copy of the working tree with Debian's own Python.

PATH holds only the system directories, so `python3` is /usr/bin/python3: externally
managed (PEP 668) on Debian 12 and Ubuntu 24.04, where a bare `pip install` is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import in_ci, require_tool
from tests.helpers import check_layout, umoci_unpack

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3")
NOT_COPIED = shutil.ignore_patterns(
    ".git", ".venv*", "__pycache__", "*.egg-info", ".*_cache", "build", "dist", "bale-out"
)


def readme_command(number: int) -> str:
    """The NUMBERth ```sh block of the README's "Two commands" section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)\n```", section, re.S)[number - 1]


def _require_system_venv() -> None:
    """Debian's python3 with its venv module (the python3-venv package)."""
    missing = ""
    if not SYSTEM_PYTHON.exists():
        missing = f"{SYSTEM_PYTHON} does not exist"
    else:
        probe = [str(SYSTEM_PYTHON), "-c", "import ensurepip, venv"]
        if subprocess.run(probe, capture_output=True, check=False).returncode != 0:
            missing = "python3-venv is not installed; scripts/test.sh installs it"
    if missing and in_ci():
        pytest.fail(missing)
    if missing:
        pytest.skip(missing)


def _run_in_clone(command: str, clone: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``command`` by bash in a fresh copy of the working tree at ``clone``, with the system's
    environment; it must succeed."""
    shutil.copytree(ROOT, clone, ignore=NOT_COPIED, symlinks=True)
    run = subprocess.run(
        ["bash", "-euc", command],
        cwd=clone,
        env=_system_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    return run


def _system_env(tmp_path: Path) -> dict[str, str]:
    """This environment with no virtual environment or Python override in force."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"  # so python3 is Debian's own
    env["TMPDIR"] = str(tmp_path)
    return env


def test_readme_command_1_builds_the_example_with_the_system_python(tmp_path: Path) -> None:
    _require_system_venv()
    skopeo = require_tool("skopeo")
    command = readme_command(1)
    assert "pip install" in command and "venv" in command, command
    clone = tmp_path / "clone"
    run = _run_in_clone(command, clone, tmp_path)
    venv_python = (clone / ".venv" / "bin" / "python").resolve()
    assert venv_python.parent == SYSTEM_PYTHON.parent, venv_python
    digest = run.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), run.stdout
    check_layout(clone / "bale-out")
    seen = subprocess.run(
        [skopeo, "inspect", "--raw", f"oci:{clone / 'bale-out'}:latest"],
        check=True,
        capture_output=True,
    ).stdout
    assert json.loads(seen)["schemaVersion"] == 2
    assert "sha256:" + hashlib.sha256(seen).hexdigest() == digest
    rootfs = umoci_unpack(clone / "bale-out", "latest", tmp_path / "bundle")
    assert (rootfs / "app" / "hello").stat().st_mode & 0o111


def test_readme_command_2_installs_into_its_own_venv_with_the_system_python(
    tmp_path: Path,
) -> None:
    """scripts/test.sh makes .venv-test from Debian's python3 and runs pytest from it
    (here only collecting one test file: the whole suite runs as CI's own command)."""
    _require_system_venv()
    command = readme_command(2)
    clone = tmp_path / "clone"
    run = _run_in_clone(f"{command} --collect-only tests/unit/test_docs.py", clone, tmp_path)
    assert "tests/unit/test_docs.py::" in run.stdout
    venv_python = (clone / ".venv-test" / "bin" / "python").resolve()
    assert venv_python.parent == SYSTEM_PYTHON.parent, venv_python
    assert (clone / ".venv-test" / "bin" / "bale").exists()
