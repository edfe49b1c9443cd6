"""The examples' committed programs are what the script in the repository writes."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "make_example_binaries.py"
E_MACHINE = {"amd64": 62, "arm64": 183}  # from the ELF ABI supplements
LIBMAGIC_NAME = {"amd64": "x86-64", "arm64": "ARM aarch64"}


def _committed() -> dict[str, bytes]:
    found = sorted((ROOT / "examples").glob("*/bin/*/hello"))
    return {str(p.relative_to(ROOT)): p.read_bytes() for p in found}


def _segment_types(data: bytes) -> list[int]:
    """p_type of every program header of a little-endian ELF64 file."""
    (phoff,) = struct.unpack_from("<Q", data, 32)
    size, count = struct.unpack_from("<HH", data, 54)
    return [struct.unpack_from("<I", data, phoff + i * size)[0] for i in range(count)]


def test_script_regenerates_the_committed_files(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(SCRIPT), "--root", str(tmp_path)], check=True, capture_output=True
    )
    made = sorted((tmp_path / "examples").glob("*/bin/*/hello"))
    regenerated = {str(p.relative_to(tmp_path)): p.read_bytes() for p in made}
    assert regenerated == _committed()
    assert all(p.stat().st_mode & 0o777 == 0o755 for p in made)


@pytest.mark.parametrize("example", ["hello", "multiarch"])
@pytest.mark.parametrize("arch", sorted(E_MACHINE))
def test_program_is_a_static_elf_for_its_architecture(example: str, arch: str) -> None:
    import magic

    path = ROOT / "examples" / example / "bin" / arch / "hello"
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF"
    (machine,) = struct.unpack_from("<H", data, 18)
    assert machine == E_MACHINE[arch]
    assert LIBMAGIC_NAME[arch] in magic.from_buffer(data)
    assert _segment_types(data) == [1], "one PT_LOAD and no PT_INTERP: static, no loader"
    assert path.stat().st_mode & 0o111, "git must keep the executable bit"
