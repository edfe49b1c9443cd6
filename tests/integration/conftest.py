"""Fixtures: real registries (module-shared), a fresh fault proxy per test, podman."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_root, require_tool
from tests.integration import registry_fixtures as rf
from tests.integration.fault_proxy import FaultProxy


@pytest.fixture(scope="session")
def plain_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[rf.RunningRegistry]:
    yield from rf.plain_registry(tmp_path_factory.mktemp("plain-registry"))


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[rf.RunningRegistry]:
    yield from rf.tls_basic_registry(tmp_path_factory.mktemp("tls-registry"))


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[rf.RunningRegistry]:
    yield from rf.token_registry(tmp_path_factory.mktemp("token-registry"))


@pytest.fixture
def fault_proxy(plain_registry: rf.RunningRegistry) -> Iterator[FaultProxy]:
    yield from rf.fault_proxy(plain_registry)


@pytest.fixture
def podman(tmp_path: Path) -> Iterator[list[str]]:
    """podman with its storage in a temp folder (the run root must be a short path)."""
    require_root()
    tool = require_tool("podman")
    with tempfile.TemporaryDirectory(prefix="bp-", dir="/tmp") as runroot:
        store = tmp_path / "podman"
        # Its own libpod tmpdir too: `system reset` below empties it, and a shared one
        # (/run/libpod) loses the exit codes of containers other podman runs are waiting for.
        state = ["--runroot", runroot, "--tmpdir", f"{runroot}/libpod"]
        command = [tool, "--root", str(store), *state, "--storage-driver", "vfs"]
        yield command
        subprocess.run([*command, "system", "reset", "--force"], capture_output=True, check=False)
