from __future__ import annotations

from pathlib import Path

import magic
import pytest

from builder.errors import SourceError
from builder.layer.archcheck import check_file, elf_architecture, worth_checking
from builder.model import Platform
from tests.elf import MACHINES, elf_header


@pytest.mark.parametrize("arch", sorted(MACHINES))
@pytest.mark.parametrize("shared", [False, True])
def test_each_machine_is_read_from_e_machine(arch: str, shared: bool) -> None:
    assert elf_architecture(elf_header(arch, shared)) == arch


def _relocatable() -> bytes:
    head = bytearray(elf_header("amd64"))
    head[16] = 1  # e_type ET_REL: an object file, not something that runs
    return bytes(head)


@pytest.mark.parametrize("head", [b"ASCII text\n", _relocatable(), b"\0" * 64, b"\x7fELF"])
def test_other_files_are_not_checked(head: bytes) -> None:
    assert elf_architecture(head) is None


def test_real_busybox_matches_the_host() -> None:
    busybox = Path("/bin/busybox")
    assert busybox.exists(), "busybox-static is installed by scripts/test.sh"
    assert elf_architecture(busybox.read_bytes()[:4096]) == Platform.host().architecture
    assert "ELF" in magic.from_file(str(busybox))


def test_mismatch_names_file_platform_and_machine(tmp_path: Path) -> None:
    path = tmp_path / "tool"
    path.write_bytes(elf_header("arm64"))
    check_file(str(path), "bin/tool", Platform.parse("linux/arm64"), "layers[0]")
    with pytest.raises(SourceError) as caught:
        check_file(str(path), "bin/tool", Platform.parse("linux/amd64"), "layers[0]")
    message = str(caught.value)
    assert "/bin/tool is built for arm64 (AArch64)" in message
    assert "the image is for linux/amd64" in message and "check_arch = false" in message


@pytest.mark.parametrize(
    ("mode", "path", "expected"),
    [
        (0o755, "usr/bin/tool", True),
        (0o700, "app/run", True),
        (0o644, "usr/lib/libc.so.6", True),
        (0o644, "usr/lib/python3/x.cpython-311-x86_64-linux-gnu.so", True),
        (0o644, "etc/passwd", False),
        (0o644, "app/data.bin", False),
        (0o644, "docs/so.txt", False),
    ],
)
def test_only_executables_and_shared_objects_are_read(mode: int, path: str, expected: bool) -> None:
    assert worth_checking(mode, path) is expected
