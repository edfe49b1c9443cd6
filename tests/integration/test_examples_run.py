"""Every example image runs under runc, offline, and prints its line.

The multi-platform example is split by skopeo (an independent judge picks each
platform's manifest from the index); the image for the other architecture runs under
runc through Debian's static qemu user emulator copied into its root.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from builder.cli.main import main
from builder.model import Platform
from tests.conftest import require_root, require_tool
from tests.helpers import check_layout, runc_run, umoci_unpack

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
E_MACHINE = {"amd64": 62, "arm64": 183}
QEMU = {"amd64": "qemu-x86_64-static", "arm64": "qemu-aarch64-static"}
HOST = Platform.host().architecture


def _build(example: str, layout: Path) -> None:
    spec = EXAMPLES / example / "image.toml"
    assert main(["build", "-q", "-f", str(spec), "-o", f"oci:{layout}"]) == 0
    check_layout(layout)


def _e_machine(program: Path) -> int:
    data = program.read_bytes()
    assert data[:4] == b"\x7fELF", program
    return int(struct.unpack_from("<H", data, 18)[0])


def _run(bundle: Path, arch: str, name: str) -> str:
    """Run the bundle's own process; under qemu when the image is not for this machine."""
    if arch != HOST:
        qemu = require_tool(QEMU[arch])
        shutil.copy(qemu, bundle / "rootfs" / "qemu")
        config_path = bundle / "config.json"
        config = json.loads(config_path.read_text())
        config["process"]["args"] = ["/qemu", *config["process"]["args"]]
        config_path.write_text(json.dumps(config))
    result = runc_run(bundle, f"{name}-{os.getpid()}")
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_hello_runs_under_runc(tmp_path: Path) -> None:
    require_root()
    if HOST not in E_MACHINE:
        pytest.skip(f"examples/hello has programs for {sorted(E_MACHINE)}, not {HOST}")
    _build("hello", tmp_path / "oci")
    rootfs = umoci_unpack(tmp_path / "oci", "latest", tmp_path / "bundle")
    assert _e_machine(rootfs / "app" / "hello") == E_MACHINE[HOST]
    output = _run(tmp_path / "bundle", HOST, "bale-example-hello")
    assert output == f"hello from bale on linux/{HOST}\n"


@pytest.mark.parametrize("arch", sorted(E_MACHINE))
def test_multiarch_runs_each_platform_under_runc(tmp_path: Path, arch: str) -> None:
    require_root()
    skopeo = require_tool("skopeo")
    _build("multiarch", tmp_path / "oci")
    single = tmp_path / "single"
    pick = ["--override-arch", arch, "--override-os", "linux"]
    subprocess.run(
        [skopeo, *pick, "copy", f"oci:{tmp_path / 'oci'}:latest", f"oci:{single}:{arch}"],
        check=True,
        capture_output=True,
    )
    rootfs = umoci_unpack(single, arch, tmp_path / "bundle")
    assert _e_machine(rootfs / "usr" / "local" / "bin" / "hello") == E_MACHINE[arch]
    output = _run(tmp_path / "bundle", arch, f"bale-example-{arch}")
    assert output == f"hello from bale on linux/{arch}\n"
