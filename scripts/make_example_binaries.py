"""Write the examples' tiny static Linux programs, byte for byte the same on every run.

Each program is one ELF file with a single loadable segment holding a few instructions
that call write(1, message) and exit_group(0): no libc, no compiler, no dynamic loader,
so it runs in a scratch image. The message names the platform, so an image shows which
of its manifests a runtime picked. The files are committed; run this script after
changing it (tests/unit/test_example_binaries.py checks that they match):

    python3 scripts/make_example_binaries.py
"""

from __future__ import annotations

import argparse
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ("hello", "multiarch")
BASE_ADDRESS = 0x400000
ELF_HEADER_SIZE = 64
PROGRAM_HEADER_SIZE = 56
CODE_OFFSET = ELF_HEADER_SIZE + PROGRAM_HEADER_SIZE


@dataclass(frozen=True)
class Machine:
    """How to write the program for one architecture."""

    e_machine: int
    page_align: int
    code: Callable[[int], bytes]  # message length -> instructions, the message right after


def _amd64_code(length: int) -> bytes:
    """mov eax,1; mov edi,1; lea rsi,[rip+16]; mov edx,len; syscall;
    mov eax,231; xor edi,edi; syscall (the message follows, 16 bytes after the lea)."""
    return (
        b"\xb8\x01\x00\x00\x00"
        + b"\xbf\x01\x00\x00\x00"
        + b"\x48\x8d\x35\x10\x00\x00\x00"
        + b"\xba"
        + struct.pack("<I", length)
        + b"\x0f\x05"
        + b"\xb8\xe7\x00\x00\x00"
        + b"\x31\xff"
        + b"\x0f\x05"
    )


def _movz(register: int, value: int) -> int:
    """aarch64 `movz xN, #value` (value < 65536)."""
    return 0xD2800000 | (value << 5) | register


def _arm64_code(length: int) -> bytes:
    """mov x0,#1; adr x1,message; mov x2,#len; mov x8,#64 (write); svc 0;
    mov x0,#0; mov x8,#94 (exit_group); svc 0 (the message follows, 28 bytes after the adr)."""
    adr_x1 = 0x10000000 | ((28 >> 2) << 5) | 1
    svc = 0xD4000001
    words = [_movz(0, 1), adr_x1, _movz(2, length), _movz(8, 64), svc]
    words += [_movz(0, 0), _movz(8, 94), svc]
    return struct.pack("<8I", *words)


MACHINES = {
    "amd64": Machine(e_machine=62, page_align=0x1000, code=_amd64_code),
    "arm64": Machine(e_machine=183, page_align=0x10000, code=_arm64_code),
}


def message(arch: str) -> bytes:
    """What the program for ``arch`` prints."""
    return f"hello from bale on linux/{arch}\n".encode()


def program(arch: str) -> bytes:
    """The whole ELF file for ``arch``: header, one PT_LOAD segment, code, message."""
    machine = MACHINES[arch]
    text = message(arch)
    body = machine.code(len(text)) + text
    size = CODE_OFFSET + len(body)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)  # 64-bit, little-endian, SysV
    header = struct.pack(
        "<16sHHIQQQIHHHHHH",
        ident,
        2,  # ET_EXEC
        machine.e_machine,
        1,
        BASE_ADDRESS + CODE_OFFSET,  # entry point
        ELF_HEADER_SIZE,  # program headers right after this header
        0,  # no section headers
        0,
        ELF_HEADER_SIZE,
        PROGRAM_HEADER_SIZE,
        1,
        0,
        0,
        0,
    )
    segment = struct.pack(
        "<IIQQQQQQ",
        1,  # PT_LOAD
        5,  # readable, executable
        0,
        BASE_ADDRESS,
        BASE_ADDRESS,
        size,
        size,
        machine.page_align,
    )
    return header + segment + body


def write_all(root: Path) -> list[Path]:
    """Write every example's programs under ``root`` (the repository, or a copy)."""
    written = []
    for example in EXAMPLES:
        for arch in sorted(MACHINES):
            path = root / "examples" / example / "bin" / arch / "hello"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(program(arch))
            os.chmod(path, 0o755)
            written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root to write into")
    for path in write_all(parser.parse_args().root):
        print(path)


if __name__ == "__main__":
    main()
