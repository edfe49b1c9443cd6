"""Malicious tarballs, each tried three ways: ``tar =`` import, base layer, inspect.

Run: ``python -m tests.fuzz.tar_attacks [--big] [--exec] [--only NAME]``. ``--big``
adds the cases whose decompressed size is in GiBs (a few seconds each to make).
Every case must end in one ``bale: error:`` line and exit 1, within the
sandbox's time and memory limits, touching nothing outside its output.
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import io
import lzma
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import zstandard

from tests.fuzz.images import LAYER_GZIP, LAYER_TAR, LAYER_ZSTD, Layout
from tests.fuzz.sandbox import Case, Result, run

GiB = 1 << 30


def _header(
    name: bytes,
    *,
    size: int = 0,
    kind: bytes = b"0",
    linkname: bytes = b"",
    mode: int = 0o644,
    uid: int = 0,
    size_field: bytes | None = None,
    magic: bytes = b"ustar\x0000",
) -> bytes:
    """One raw 512-byte header, fields written as given (no checks), checksum correct."""

    def octal(value: int, width: int) -> bytes:
        return f"{value:0{width - 1}o}".encode()[: width - 1] + b"\0"

    block = bytearray(512)
    block[0:100] = name[:100].ljust(100, b"\0")
    block[100:108] = octal(mode, 8)
    block[108:116] = octal(uid, 8)
    block[116:124] = octal(0, 8)
    block[124:136] = size_field if size_field is not None else octal(size, 12)
    block[136:148] = octal(0, 12)
    block[148:156] = b" " * 8
    block[156:157] = kind
    block[157:257] = linkname[:100].ljust(100, b"\0")
    block[257:265] = magic
    block[148:156] = f"{sum(block):06o}\0 ".encode()
    return bytes(block)


def _member(name: bytes, data: bytes = b"", **fields: object) -> bytes:
    padding = bytes(-len(data) % 512)
    return _header(name, size=len(data), **fields) + data + padding  # type: ignore[arg-type]


def _pax(records: dict[str, str]) -> bytes:
    """A PAX extended header (type x) carrying ``records``, for the member after it."""
    body = b""
    for key, value in records.items():
        line = f" {key}={value}\n".encode("utf-8", "surrogateescape")
        length = len(line)
        while len(str(length).encode()) + len(line) != length:
            length = len(str(length).encode()) + len(line)
        body += str(length).encode() + line
    return _member(b"././@PaxHeader", body, kind=b"x")


END = bytes(1024)


def _tar(*members: bytes) -> bytes:
    return b"".join(members) + END


def _good() -> bytes:
    return _tar(_member(b"etc/", kind=b"5", mode=0o755), _member(b"etc/hello", b"hi\n"))


def _base256(value: int) -> bytes:
    return bytes([0x80]) + value.to_bytes(11, "big")


def _zeros_stream(total: int, compress: Callable[[bytes], bytes], chunk: int = 64 << 20) -> bytes:
    """``total`` zero bytes as concatenated compressed frames of one compressed chunk."""
    block = compress(bytes(min(chunk, total)))
    count, rest = divmod(total, chunk)
    return block * count + (compress(bytes(rest)) if rest else b"")


def _zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=3).compress(data)


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def long_name_claim(kind: bytes, real: int) -> bytes:
    """A GNU long-name (L) or long-link (K) header claiming 2 GiB; ``real`` bytes follow."""
    return _header(b"././@LongLink", kind=kind, size_field=_base256(2 * GiB)) + bytes(real)


def cases(big: bool = False) -> Iterator[tuple[str, bytes]]:
    """(name, tarball bytes) for every attack; the tarball may be compressed."""
    yield "slip-dotdot", _tar(_member(b"../evil", b"x"))
    yield "slip-inner-dotdot", _tar(_member(b"a/../../evil", b"x"))
    yield "absolute-name", _tar(_member(b"/etc/evil", b"x"))
    yield (
        "symlink-escape-then-write",
        _tar(_member(b"up", kind=b"2", linkname=b"../../outside"), _member(b"up/evil", b"x")),
    )
    yield (
        "symlink-absolute-then-write",
        _tar(_member(b"etc", kind=b"2", linkname=b"/etc"), _member(b"etc/evil", b"x")),
    )
    yield "hardlink-escape", _tar(_member(b"h", kind=b"1", linkname=b"../outside/secret"))
    yield "hardlink-absolute", _tar(_member(b"h", kind=b"1", linkname=b"/etc/shadow"))
    yield "hardlink-dangling", _tar(_member(b"h", kind=b"1", linkname=b"nothing"))
    yield (
        "hardlink-to-dir",
        _tar(_member(b"d/", kind=b"5"), _member(b"h", kind=b"1", linkname=b"d")),
    )
    yield "size-2^62", _tar(_header(b"big", size_field=_base256(1 << 62)) + bytes(512))
    yield (
        "size-2^62-passwd",
        _tar(_member(b"etc/", kind=b"5"), _header(b"etc/passwd", size_field=_base256(1 << 62))),
    )
    yield "size-negative", _tar(_header(b"neg", size_field=bytes([0xFF]) * 12))
    yield "longname-claims-2GiB", _tar(long_name_claim(b"L", 4096))
    yield "longlink-claims-2GiB", _tar(long_name_claim(b"K", 4096))
    yield (
        "pax-claims-2GiB",
        _tar(_header(b"././@PaxHeader", kind=b"x", size_field=_base256(2 * GiB)) + bytes(4096)),
    )
    yield "pax-path-nul", _tar(_pax({"path": "a\0b"}), _member(b"ignored", b"x"))
    yield "pax-linkpath-nul", _tar(_pax({"linkpath": "tar\0get"}), _member(b"l", kind=b"2"))
    yield "pax-uid-2^40", _tar(_pax({"uid": str(1 << 40)}), _member(b"f", b"x"))
    yield "pax-uid-negative", _tar(_pax({"uid": "-1"}), _member(b"f", b"x"))
    yield "pax-uid-4294967295", _tar(_pax({"uid": str(2**32 - 1)}), _member(b"f", b"x"))
    yield "pax-mtime-1e999", _tar(_pax({"mtime": "1e999"}), _member(b"f", b"x"))
    yield "pax-mtime-nan", _tar(_pax({"mtime": "nan"}), _member(b"f", b"x"))
    yield "pax-size-huge", _tar(_pax({"size": str(1 << 62)}), _member(b"f", b"x"))
    yield "pax-xattr-binary-name", _tar(_pax({"SCHILY.xattr.\udcff": "v"}), _member(b"f", b"x"))
    yield "empty-name", _tar(_member(b"", b"x"))
    yield "char-device", _tar(_member(b"dev-null", kind=b"3"))
    yield "block-device", _tar(_member(b"sda", kind=b"4"))
    yield "fifo", _tar(_member(b"pipe", kind=b"6"))
    yield "sparse-member", _tar(_member(b"sparse", kind=b"S"))
    yield "duplicate-member", _tar(_member(b"f", b"x"), _member(b"f", b"y"))
    yield "bad-checksum-first", b"\x01" * 512 + END
    yield "garbage", os.urandom(4096)
    yield "cut-inside-data", _tar(_member(b"f", b"x" * 5000))[:1536]
    yield "cut-inside-header", (_member(b"a", b"x") + _member(b"b", b"y"))[: 1024 + 200]
    yield "cut-after-header", _tar(_member(b"f", b"x" * 600))[:512]
    yield "gzip-truncated", _gzip(_good() * 20)[:-40]
    yield "zstd-truncated", _zstd(_good() + _tar(_member(b"x" * 90, os.urandom(9000))))[:-3000]
    yield "xz-truncated", lzma.compress(_good())[:-20]
    yield "bzip2-truncated", bz2.compress(_good())[:-20]
    yield "gzip-magic-zstd-body", b"\x1f\x8b\x08\x00" + _zstd(_good())[4:]
    yield "zstd-magic-garbage", b"\x28\xb5\x2f\xfd" + os.urandom(2000)
    yield "xz-magic-garbage", b"\xfd7zXZ\x00" + os.urandom(2000)
    yield "bzip2-magic-garbage", b"BZh9" + os.urandom(2000)
    yield "gzip-of-random", _gzip(os.urandom(4096))
    yield "gzip-of-zeros-64MiB", _zeros_stream(64 << 20, _gzip)
    yield "zstd-of-zeros-64MiB", _zeros_stream(64 << 20, _zstd)
    yield "gzip-of-gzip", _gzip(_gzip(_good()))
    yield "nul-in-ustar-name", _tar(_member(b"a\0b/evil", b"x"))
    yield "deep-path", _tar(_member(b"/".join([b"d"] * 200) + b"/f", b"x"))
    yield "ustar-magic-wrong", _tar(_member(b"f", b"x", magic=b"NOTAR\0\0\0"))
    yield "trailing-garbage", _good() + os.urandom(1024)
    if big:
        yield "longname-2GiB-real-zstd", _zstd_stream_long_name()
        yield "gzip-of-zeros-10GiB", _zeros_stream(10 * GiB, _gzip)


def _zstd_stream_long_name() -> bytes:
    """A GNU long-name header whose 2 GiB of name really follows, as a small zstd file."""
    head = _header(b"././@LongLink", kind=b"L", size_field=_base256(2 * GiB))
    out = io.BytesIO()
    with zstandard.ZstdCompressor(level=3).stream_writer(out, closefd=False) as writer:
        writer.write(head)
        chunk = b"a" * (64 << 20)
        for _ in range(32):
            writer.write(chunk)
        writer.write(END)
    return out.getvalue()


def _media_type(data: bytes) -> str:
    if data[:2] == b"\x1f\x8b":
        return LAYER_GZIP
    if data[:4] == b"\x28\xb5\x2f\xfd":
        return LAYER_ZSTD
    return LAYER_TAR


IMPORT_TOML = """[image]
created = "2024-01-01T00:00:00Z"
[[layers]]
name = "imported"
tar = "attack.tar"
[[layers]]
name = "more"
content = [{ dst = "/x", text = "x" }]
"""

BASE_TOML = """[image]
base = "oci:base:base"
platforms = ["linux/amd64"]
created = "2024-01-01T00:00:00Z"
[[users]]
name = "app"
uid = 1000
[[layers]]
name = "more"
content = [{ dst = "/x", text = "x" }]
"""


def _prepare_common(root: Path) -> None:
    (root / "outside" / "secret").write_text("secret\n")
    Layout().write(root / "out" / "layout")


# Valid in a base layer (OCI allows devices, FIFOs, links to lower layers and more),
# so a build or inspect may succeed; a ``tar =`` import refuses all of them.
VALID_IN_IMAGES = frozenset(
    {
        "absolute-name",
        "symlink-escape-then-write",
        "symlink-absolute-then-write",
        "hardlink-escape",
        "hardlink-absolute",
        "hardlink-dangling",
        "hardlink-to-dir",
        "char-device",
        "block-device",
        "fifo",
        "sparse-member",
        "duplicate-member",
    }
)
# Valid everywhere: a ustar name ends at its first NUL; v7 headers have no magic.
VALID = frozenset({"nul-in-ustar-name", "deep-path", "ustar-magic-wrong"})


def _import_case(name: str, data: bytes) -> Case:
    def prepare(root: Path) -> None:
        _prepare_common(root)
        (root / "ctx" / "image.toml").write_text(IMPORT_TOML)
        (root / "ctx" / "attack.tar").write_bytes(data)

    argv = ("build", "-o", "oci:../out/layout:new")
    return Case(f"import/{name}", argv, prepare, ok_allowed=name in VALID)


def _base_layout(data: bytes) -> Layout:
    return Layout(layer=data, layer_type=_media_type(data))


def _base_case(name: str, data: bytes) -> Case:
    def prepare(root: Path) -> None:
        _prepare_common(root)
        (root / "ctx" / "image.toml").write_text(BASE_TOML)
        _base_layout(data).write(root / "ctx" / "base")

    argv = ("build", "-o", "oci:../out/layout:new")
    return Case(f"base/{name}", argv, prepare, ok_allowed=name in VALID | VALID_IN_IMAGES)


def _inspect_case(name: str, data: bytes) -> Case:
    def prepare(root: Path) -> None:
        _prepare_common(root)
        _base_layout(data).write(root / "ctx" / "base")

    argv = ("inspect", "--files", "oci:base:base")
    return Case(f"inspect/{name}", argv, prepare, ok_allowed=name in VALID | VALID_IN_IMAGES)


MODES = (_import_case, _base_case, _inspect_case)

DEEP_TOML = """[image]
created = "2024-01-01T00:00:00Z"
[[layers]]
name = "deep"
tar = "attack.tar"
[[layers]]
name = "globs"
delete = ["/**/**/**/**/**/**/**/**/nomatch"]
missing_ok = true
content = [{ dst = "/x", text = "x" }]
"""


def _context_cases() -> Iterator[Case]:
    """How ``tar =`` and the globs meet the build context (the lead's fixes of issue 11)."""
    deep = _tar(_member(b"/".join([b"d"] * 1200) + b"/f", b"x"))

    def deep_tree(root: Path) -> None:
        _prepare_common(root)
        (root / "ctx" / "image.toml").write_text(DEEP_TOML)
        (root / "ctx" / "attack.tar").write_bytes(deep)

    def linked_dir(root: Path) -> None:
        _prepare_common(root)
        (root / "outside" / "x.tar").write_bytes(_good())
        (root / "ctx" / "dirlink").symlink_to("../outside")
        (root / "ctx" / "image.toml").write_text(IMPORT_TOML.replace("attack.tar", "dirlink/x.tar"))

    def linked_file(root: Path) -> None:
        _prepare_common(root)
        (root / "outside" / "x.tar").write_bytes(_good())
        (root / "ctx" / "attack.tar").symlink_to("../outside/x.tar")
        (root / "ctx" / "image.toml").write_text(IMPORT_TOML)

    argv = ("build", "-o", "oci:../out/layout:new")
    yield Case("context/deep-tree-glob", argv, deep_tree, ok_allowed=True)
    yield Case("context/tar-through-dir-symlink", argv, linked_dir)
    yield Case("context/tar-symlink-out", argv, linked_file)


def all_cases(big: bool = False) -> Iterator[Case]:
    for name, data in cases(big):
        for mode in MODES:
            yield mode(name, data)
    yield from _context_cases()


def report(results: list[Result]) -> int:
    """Print one line per failed case and the totals; the exit status of the harness."""
    failed = [r for r in results if not r.passed]
    for r in failed:
        last = r.stderr.strip().splitlines()[-1:] or [""]
        print(f"FAIL {r.verdict:10} {r.name}: {last[0][:200]} {r.notes}")
    counts: dict[str, int] = {}
    for r in results:
        counts[r.verdict] = counts.get(r.verdict, 0) + 1
    slowest = max((r.seconds for r in results), default=0.0)
    print(f"{len(results)} cases: {counts}; slowest {slowest:.1f} s")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--big", action="store_true", help="add the GiB-sized cases")
    parser.add_argument("--exec", action="store_true", help="run the bale program, not a fork")
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per case")
    args = parser.parse_args(argv)
    results = [run(case, exec_=args.exec) for case in all_cases(args.big) if args.only in case.name]
    return report(results)


if __name__ == "__main__":
    sys.exit(main())
