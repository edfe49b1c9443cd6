"""A real Debian root for tests: ``debootstrap --variant=minbase --include=python3 bookworm``.

The tree takes about 90 s to make, so it is made once per machine under
``/var/tmp/bale-tests`` (or ``BALE_TEST_DEBIAN``) and reused by later sessions;
a lock lets parallel test sessions share it. Tests must treat it as read-only.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import require_root, require_tool

SUITE = "bookworm"
COMMAND = ("--variant=minbase", "--include=python3", SUITE)


def _cache_root() -> Path:
    return Path(os.environ.get("BALE_TEST_DEBIAN", "/var/tmp/bale-tests"))


def debian_root() -> Path:
    """The debootstrapped tree, made on first use (root and debootstrap required)."""
    require_root()
    debootstrap = require_tool("debootstrap")
    base = _cache_root()
    base.mkdir(parents=True, exist_ok=True)
    root = base / f"{SUITE}-minbase-python3"
    with open(base / f"{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (root / ".complete").exists():
            return root
        shutil.rmtree(root, ignore_errors=True)
        result = subprocess.run(
            [debootstrap, *COMMAND, str(root)], capture_output=True, text=True, timeout=1200
        )
        if result.returncode != 0:
            pytest.fail(f"debootstrap failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
        (root / ".complete").write_text(" ".join(COMMAND) + "\n")
    return root
