"""A real Debian root for tests: ``debootstrap --variant=minbase --include=python3 bookworm``.

The tree takes about 90 s to make, so it is made once per machine under
``/var/tmp/bale-tests`` (or ``BALE_TEST_DEBIAN``) and reused by later sessions;
a lock lets parallel test sessions share it. Tests must treat it as read-only.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import made_once, require_root, require_tool

SUITE = "bookworm"
COMMAND = ("--variant=minbase", "--include=python3", SUITE)


def _cache_root() -> Path:
    return Path(os.environ.get("BALE_TEST_DEBIAN", "/var/tmp/bale-tests"))


def debian_root() -> Path:
    """The debootstrapped tree, made on first use (root and debootstrap required)."""
    require_root()
    debootstrap = require_tool("debootstrap")

    def make(root: Path) -> str:
        result = subprocess.run(
            [debootstrap, *COMMAND, str(root)], capture_output=True, text=True, timeout=1200
        )
        if result.returncode != 0:
            pytest.fail(f"debootstrap failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
        return " ".join(COMMAND) + "\n"

    return made_once(_cache_root(), f"{SUITE}-minbase-python3", make)
