"""Go modules: the build info Go (1.18 and later) embeds in every executable it links.

The linker writes a record beginning ``\\xff Go buildinf:`` into the binary's
data segment: a 32-byte header, then two length-prefixed strings, the Go
version and the module information ``go version -m`` prints (``path``,
``mod``, ``dep``, ``=>`` and ``build`` lines). ``PICKER`` finds it while a
file streams past: from an ELF file's first bytes (its program headers) it
asks for the start of the first writable PT_LOAD segment (up to ``WINDOW``
bytes, where both Go's own and an external linker put the record) and keeps
only the record. Other files, other formats and damaged records give nothing.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from packageurl import PackageURL

from builder.supply.packages import Distro, Package
from builder.supply.rootfs import Rootfs

MAGIC = b"\xff Go buildinf:"
HEADER = 32
INLINE_STRINGS = 2  # header flag: the strings follow the header (Go 1.18 and later)
WINDOW = 1 << 20
MAX_RECORD = 256 << 10
_PT_LOAD, _PF_RWX, _PF_RW = 1, 7, 6
_ELF = {  # ELF class → (e_phoff, e_phentsize/e_phnum formats and offsets, phdr parts)
    1: ("I", 0x1C, 0x2A, "IIIIIIII", (1, 4, 6)),  # p_offset, p_filesz, p_flags
    2: ("Q", 0x20, 0x36, "IIQQQQQQ", (2, 5, 1)),
}
_MAX_PHNUM = 256


@dataclass(frozen=True, slots=True)
class Module:
    """One module line: its path, version (``(devel)`` for a local main module) and sum."""

    path: str
    version: str
    sum: str = ""


@dataclass(frozen=True, slots=True)
class GoBuild:
    """A binary's build info: the Go version, the main module and the dependencies."""

    go: str
    main: Module | None
    deps: tuple[Module, ...]


class GoPicker:
    """The ``Picker`` (see ``builder.layer.excerpt``) that keeps a Go build info record."""

    def span(self, head: bytes, size: int) -> tuple[int, int] | None:
        found = _data_segment(head)
        if found is None or found[0] >= size:
            return None
        offset, length = found
        return offset, min(length, WINDOW, size - offset)

    def pick(self, window: bytes) -> bytes | None:
        at = window.find(MAGIC)
        while at >= 0:
            end = _record_end(window, at)
            if end is not None:
                return window[at:end]
            at = window.find(MAGIC, at + 1)
        return None


PICKER = GoPicker()


def _data_segment(head: bytes) -> tuple[int, int] | None:
    """(file offset, size) of the first read-write PT_LOAD segment of an ELF head."""
    if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] not in _ELF or head[5] not in (1, 2):
        return None
    word, at_phoff, at_sizes, phdr, (offset_at, size_at, flags_at) = _ELF[head[4]]
    order = "<" if head[5] == 1 else ">"
    (phoff,) = struct.unpack_from(order + word, head, at_phoff)
    entsize, count = struct.unpack_from(order + "HH", head, at_sizes)
    if count > _MAX_PHNUM or entsize < struct.calcsize(phdr) or phoff + entsize * count > len(head):
        return None
    for n in range(count):
        fields = struct.unpack_from(order + phdr, head, phoff + n * entsize)
        if fields[0] == _PT_LOAD and fields[flags_at] & _PF_RWX == _PF_RW:
            return fields[offset_at], fields[size_at]
    return None


def _uvarint(data: bytes, at: int) -> tuple[int, int] | None:
    """An unsigned LEB128 number at ``at`` and the offset after it."""
    value = shift = 0
    while at < len(data) and shift < 64:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            return value, at
    return None


def _record_end(data: bytes, at: int) -> int | None:
    """Where a Go 1.18+ build info record at ``at`` ends; None if it is not one."""
    if len(data) < at + HEADER or data[at + 14] not in (4, 8):
        return None
    if not data[at + 15] & INLINE_STRINGS:
        return None  # Go 1.17 and older point into other segments: not read
    cursor = at + HEADER
    for _ in range(2):
        found = _uvarint(data, cursor)
        if found is None or found[0] > MAX_RECORD or found[1] + found[0] > len(data):
            return None
        cursor = found[1] + found[0]
    return cursor


def parse_build_info(record: bytes) -> GoBuild | None:
    """The build info of a record ``GoPicker`` kept; None when it is damaged."""
    end = _record_end(record, 0) if record.startswith(MAGIC) else None
    if end is None:
        return None
    strings = []
    cursor = HEADER
    for _ in range(2):
        found = _uvarint(record, cursor)
        assert found is not None  # _record_end checked both
        strings.append(record[found[1] : found[1] + found[0]].decode("utf-8", "replace"))
        cursor = found[1] + found[0]
    go, modinfo = strings
    # The module text sits between two 16-byte sentinels, as Go's debug/buildinfo expects.
    framed = len(modinfo) >= 33 and modinfo[-17] == "\n"
    main, deps = _modules(modinfo[16:-16] if framed else "")
    return GoBuild(go, main, deps)


def _modules(text: str) -> tuple[Module | None, tuple[Module, ...]]:
    """The main module and the dependencies; a ``=>`` line replaces the line before it
    (by another module; a directory replacement keeps the ``dep`` line)."""
    main: Module | None = None
    deps: list[Module] = []
    for line in text.splitlines():
        kind, _, rest = line.partition("\t")
        parts = rest.split("\t")
        module = Module(*[*parts, "", ""][:3]) if parts[0] else None
        if kind == "mod" and module is not None:
            main = module
        elif kind == "dep" and module is not None:
            deps.append(module)
        elif kind == "=>" and module is not None and deps and not _local(module.path):
            deps[-1] = module
    return main, tuple(deps)


def _local(path: str) -> bool:
    """A replacement by a directory: the dependency keeps the path and version it required."""
    return path.startswith(("./", "../", "/")) or path in (".", "..")


def go_packages(rootfs: Rootfs, distro: Distro) -> Iterator[Package]:
    """The Go toolchain (``stdlib``), main module and dependencies of each Go binary."""
    del distro  # a Go module's identity does not depend on the OS
    for path in rootfs.kept(lambda _: True):
        record = rootfs.read(path) or b""
        build = parse_build_info(record) if record.startswith(MAGIC) else None
        if build is None:
            continue
        layer = rootfs.origin[path]
        yield Package("golang", "stdlib", build.go, _stdlib_purl(build.go), "", path, layer)
        for module in (build.main, *build.deps):
            if module is not None:
                purl = PackageURL("golang", None, module.path, _purl_version(module.version))
                yield Package(
                    "golang", module.path, module.version, purl.to_string(), "", path, layer
                )


def _stdlib_purl(go: str) -> str:
    """``pkg:golang/stdlib@1.22.3`` for ``go1.22.3`` (as syft and trivy write it)."""
    version = go.split()[0].removeprefix("go") if go.startswith("go") else ""
    return PackageURL("golang", None, "stdlib", version or None).to_string()


def _purl_version(version: str) -> str | None:
    """A module version for a purl; ``(devel)`` (a local build) is not one."""
    return version if version and not version.startswith("(") else None
