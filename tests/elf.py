"""Test-made ELF headers: enough bytes for libmagic to name the machine."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

from tests.helpers import write_toml

MACHINES = {  # GOARCH: (e_machine, bits, little-endian)
    "amd64": (62, 64, True),
    "arm64": (183, 64, True),
    "arm": (40, 32, True),
    "386": (3, 32, True),
    "ppc64le": (21, 64, True),
    "s390x": (22, 64, False),
    "riscv64": (243, 64, True),
}


def elf_header(arch: str, shared: bool = False) -> bytes:
    machine, bits, little = MACHINES[arch]
    order = "<" if little else ">"
    ident = b"\x7fELF" + bytes([2 if bits == 64 else 1, 1 if little else 2, 1, 0]) + bytes(8)
    body = struct.pack(order + "HHI", 3 if shared else 2, machine, 1)
    return (ident + body).ljust(128, b"\0")


# A [config] and two layers: the tool of each platform, and a file alike on all of them.
TOOL_LAYERS = """
[config]
entrypoint = ["/bin/tool"]

[[layers]]
name = "tool"
files = [{ src = "bin/{arch}/tool", dst = "/bin/tool" }]

[[layers]]
name = "shared"
content = [{ dst = "/etc/motd", text = "same everywhere\\n" }]
"""


def tool_context(root: Path, arches: Iterable[str], image: str, more: str = "") -> Path:
    """A context at ``root``: ``bin/<arch>/tool`` (an executable ELF header) per arch, and
    an image.toml of the ``image`` table, ``TOOL_LAYERS`` and ``more``."""
    for arch in arches:
        path = root / "bin" / arch / "tool"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(elf_header(arch))
        path.chmod(0o755)
    return write_toml(root, image + TOOL_LAYERS + more)
