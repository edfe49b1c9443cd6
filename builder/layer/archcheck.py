"""Catch the classic multi-arch mistake: a binary of the wrong architecture.

python-magic (libmagic) names an ELF file's machine. Only executable files and
shared objects are read, and only those starting with the ELF magic are shown
to libmagic, so the check costs one small read per candidate.
"""

from __future__ import annotations

import re

from builder.errors import SourceError
from builder.layer.libmagic import describe
from builder.model import Platform

ELF_MAGIC = b"\x7fELF"
_HEAD = 4096
# libmagic's machine names → GOARCH; checked in order, most specific first.
_MACHINES = (
    ("x86-64", "amd64"),
    ("aarch64", "arm64"),
    ("intel 80386", "386"),
    ("intel i386", "386"),
    ("powerpc", "ppc64le"),
    ("s/390", "s390x"),
    ("risc-v", "riscv64"),
    ("arm", "arm"),
)
_KINDS = re.compile(r"\b(executable|shared object)\b")


def elf_architecture(description: str) -> str | None:
    """GOARCH of an ELF executable or shared object, None for other files."""
    parts = description.lower().split(",")
    if len(parts) < 2 or not parts[0].startswith("elf") or not _KINDS.search(parts[0]):
        return None
    machine = parts[1]
    for needle, arch in _MACHINES:
        if needle in machine:
            if arch == "ppc64le" and "lsb" not in parts[0]:
                return "ppc64"
            return arch
    return None


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
    if not head.startswith(ELF_MAGIC):
        return
    description = describe(head)
    arch = elf_architecture(description)
    if arch is not None and arch != platform.architecture:
        raise SourceError(
            f"{where}: /{image_path} is built for {arch} ({description.split(',')[1].strip()}) "
            f"but the image is for {platform}; use the {platform.architecture} binary, a "
            "{arch} placeholder in src, or check_arch = false on the entry"
        )
