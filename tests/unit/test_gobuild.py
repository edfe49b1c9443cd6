"""The Go build info picker on hand-made ELF files: found in any chunking, damage skipped."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.layer.excerpt import Excerpt
from builder.supply.gobuild import PICKER, GoBuild, Module, parse_build_info

MODINFO = (
    "path\texample.com/app\n"
    "mod\texample.com/app\tv0.3.0\th1:abc=\n"
    "dep\tgolang.org/x/sys\tv0.1.0\th1:def=\n"
    "dep\texample.com/old\tv1.0.0\th1:ghi=\n"
    "=>\texample.com/new\tv1.1.0\th1:jkl=\n"
    "dep\texample.com/local\tv0.0.1\n"
    "=>\t./local\t(devel)\t\n"
    "build\t-compiler=gc\n"
)
DATA_AT = 8192


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))


def record(go: str = "go1.22.1", modinfo: str = MODINFO) -> bytes:
    """A Go 1.18+ build info record: header, then the two length-prefixed strings."""
    framed = b"0" * 16 + modinfo.encode() + b"1" * 16
    header = b"\xff Go buildinf:" + bytes([8, 2]) + bytes(16)
    return header + _uvarint(len(go)) + go.encode() + _uvarint(len(framed)) + framed


def elf(payload: bytes, *, bits: int = 64, big: bool = False, data_at: int = DATA_AT) -> bytes:
    """An ELF file: a read-only PT_LOAD, then a read-write one at ``data_at`` holding ``payload``."""
    order = ">" if big else "<"
    if bits == 64:
        header = b"\x7fELF" + bytes([2, 2 if big else 1, 1]) + bytes(9)
        header += struct.pack(order + "HHIQQQIHHHHHH", 2, 62, 1, 0, 64, 0, 0, 64, 56, 2, 0, 0, 0)
        phdrs = struct.pack(order + "IIQQQQQQ", 1, 5, 0, 0, 0, data_at, data_at, 4096)
        phdrs += struct.pack(order + "IIQQQQQQ", 1, 6, data_at, data_at, 0, 1 << 16, 1 << 16, 4096)
    else:
        header = b"\x7fELF" + bytes([1, 2 if big else 1, 1]) + bytes(9)
        header += struct.pack(order + "HHIIIIIHHHHHH", 2, 3, 1, 0, 52, 0, 0, 52, 32, 2, 0, 0, 0)
        phdrs = struct.pack(order + "IIIIIIII", 1, 0, 0, 0, data_at, data_at, 5, 4096)
        phdrs += struct.pack(order + "IIIIIIII", 1, data_at, data_at, 0, 1 << 16, 1 << 16, 6, 4096)
    head = header + phdrs
    data = bytes(48) + payload
    return head + bytes(data_at - len(head)) + data + bytes((1 << 16) - len(data))


def picked(data: bytes, chunk: int) -> bytes | None:
    excerpt = Excerpt(PICKER, len(data))
    for at in range(0, len(data), chunk):
        excerpt.feed(data[at : at + chunk])
        if not excerpt.wanted:
            break
    return excerpt.result()


EXPECTED = GoBuild(
    "go1.22.1",
    Module("example.com/app", "v0.3.0", "h1:abc="),
    (
        Module("golang.org/x/sys", "v0.1.0", "h1:def="),
        Module("example.com/new", "v1.1.0", "h1:jkl="),
        Module("example.com/local", "v0.0.1", ""),
    ),
)


@pytest.mark.parametrize(("bits", "big"), [(64, False), (64, True), (32, False), (32, True)])
@pytest.mark.parametrize("chunk", [1 << 20, 4096, 1000, 7])
def test_the_record_is_found_in_any_chunking(bits: int, big: bool, chunk: int) -> None:
    found = picked(elf(record(), bits=bits, big=big), chunk)
    assert found is not None and found.startswith(b"\xff Go buildinf:")
    assert parse_build_info(found) == EXPECTED


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"#!/bin/sh\n" + record(),  # the record in a file that is not ELF
        elf(b"no record here"),
        elf(record()[:32] + _uvarint(1 << 30)),  # a string longer than any record
        elf(record().replace(bytes([8, 2]), bytes([8, 0]), 1)),  # Go 1.17's pointer format
        elf(record().replace(bytes([8, 2]), bytes([3, 2]), 1)),  # no such pointer size
        elf(record()[:32] + b"\xff" * 12),  # an overlong varint
        elf(record())[:5000],  # the file ends before its data segment
        elf(record())[: DATA_AT + 60],  # the file ends inside the record
        elf(record())[:64] + struct.pack("<I", 0xFFFF) * 10,  # nonsense program headers
    ],
)
def test_damage_and_other_files_give_nothing(data: bytes) -> None:
    assert picked(data, 4096) is None


def test_a_record_without_module_text_still_names_the_toolchain() -> None:
    """What Debian's Go binaries hold (built without modules): the Go version alone."""
    bare = b"\xff Go buildinf:" + bytes([8, 2]) + bytes(16) + _uvarint(8) + b"go1.19.8" + b"\x00"
    assert parse_build_info(bare) == GoBuild("go1.19.8", None, ())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64), st.integers(min_value=0, max_value=DATA_AT + 200))
def test_random_damage_never_raises(garbage: bytes, at: int) -> None:
    data = bytearray(elf(record()))
    data[at : at + len(garbage)] = garbage
    found = picked(bytes(data), 3000)
    if found is not None:
        parse_build_info(found)


class _Slice:
    """A picker that wants bytes [at, at + length) of any file: Excerpt alone is judged."""

    def __init__(self, at: int, length: int) -> None:
        self.at, self.length = at, length

    def span(self, head: bytes, size: int) -> tuple[int, int] | None:
        return self.at, self.length

    def pick(self, window: bytes) -> bytes | None:
        return window


@pytest.mark.parametrize(("at", "length"), [(0, 10), (10, 20), (4000, 200), (5000, 3), (9000, 50)])
@pytest.mark.parametrize("chunk", [1, 3, 1000, 4096, 1 << 20])
def test_an_excerpt_is_the_same_in_any_chunking(at: int, length: int, chunk: int) -> None:
    data = bytes(n % 251 for n in range(9020))
    excerpt = Excerpt(_Slice(at, length), len(data))
    for start in range(0, len(data), chunk):
        excerpt.feed(data[start : start + chunk])
    assert excerpt.result() == data[at : at + length]
