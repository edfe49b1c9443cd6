"""Test-made ELF headers: enough bytes for libmagic to name the machine."""

from __future__ import annotations

import struct

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
