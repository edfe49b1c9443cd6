"""Catch the classic multi-arch mistake: a binary of the wrong architecture.

python-magic (libmagic) tells whether a file is an ELF executable or shared
object; the machine comes from the ELF header's ``e_machine`` field, a number
fixed by the ELF ABI, rather than from libmagic's prose, which changes between
libmagic versions. Only executable files and shared objects are read, and only
their first bytes, so the check costs one small read per candidate.
"""

from __future__ import annotations

from builder.errors import SourceError
from builder.layer.libmagic import describe
from builder.model import Platform

ELF_MAGIC = b"\x7fELF"
_HEAD = 4096
# e_machine → (GOARCH, the name the ELF ABI gives it); ppc64 is told by byte order.
_MACHINES = {
    3: ("386", "Intel 80386"),
    8: ("mips", "MIPS"),
    20: ("ppc", "PowerPC"),
    21: ("ppc64le", "PowerPC64"),
    22: ("s390x", "IBM S/390"),
    40: ("arm", "ARM"),
    62: ("amd64", "x86-64"),
    183: ("arm64", "AArch64"),
    243: ("riscv64", "RISC-V"),
    258: ("loong64", "LoongArch"),
}
_ELF_MIMES = frozenset(
    {"application/x-executable", "application/x-pie-executable", "application/x-sharedlib"}
)


def elf_machine(head: bytes) -> tuple[str, str] | None:
    """(GOARCH, machine name) from an ELF header, None if not ELF or an unknown machine."""
    if len(head) < 20 or not head.startswith(ELF_MAGIC) or head[5] not in (1, 2):
        return None
    little = head[5] == 1
    found = _MACHINES.get(int.from_bytes(head[18:20], "little" if little else "big"))
    if found is not None and found[0] == "ppc64le" and not little:
        return "ppc64", found[1]
    return found


def elf_architecture(head: bytes) -> str | None:
    """GOARCH of an ELF executable or shared object (libmagic says which), None otherwise."""
    if not head.startswith(ELF_MAGIC) or describe(head, mime=True) not in _ELF_MIMES:
        return None
    found = elf_machine(head)
    return found[0] if found else None


def worth_checking(mode: int, image_path: str) -> bool:
    """Executables and shared objects (``*.so``, ``*.so.1``); other files are never opened.

    This keeps a rebuild that hits the layer cache from reading every file.
    """
    name = image_path.rsplit("/", 1)[-1]
    return bool(mode & 0o111) or name.endswith(".so") or ".so." in name


def check_file(path: str, image_path: str, platform: Platform, where: str) -> None:
    """Raise if ``path`` is an ELF binary built for another architecture."""
    with open(path, "rb") as stream:
        head = stream.read(_HEAD)
    check_head(head, image_path, platform, where)


def check_head(head: bytes, image_path: str, platform: Platform, where: str) -> None:
    """Raise if the file starting with ``head`` is an ELF binary for another architecture."""
    head = head[:_HEAD]
    arch = elf_architecture(head)
    if arch is not None and arch != platform.architecture:
        machine = elf_machine(head)
        name = machine[1] if machine else arch
        raise SourceError(
            f"{where}: /{image_path} is built for {arch} ({name}) but the image is for "
            f"{platform}; use the {platform.architecture} binary, a {{arch}} placeholder "
            "in src, or check_arch = false on the entry"
        )
