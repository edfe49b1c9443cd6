"""Deterministic tar encoding.

PAX format (long names, non-ASCII, huge files), every mtime set to one
integer, uname/gname empty, no atime/ctime records, and only 1024 zero bytes
at the end, as Go's archive/tar writes.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable, Iterable
from typing import BinaryIO

from builder.errors import LayerError
from builder.layer.entries import Content, Entry, Kind

BLOCK = 512
READ_SIZE = 1 << 20
_TYPES = {
    Kind.FILE: tarfile.REGTYPE,
    Kind.DIR: tarfile.DIRTYPE,
    Kind.SYMLINK: tarfile.SYMTYPE,
    Kind.HARDLINK: tarfile.LNKTYPE,
}

Write = Callable[[bytes | memoryview], object]
# Moves one file's content (the entry's) into the sink; False if its size is not the recorded one.
Copy = Callable[[Entry, Content], bool]
_PAD = memoryview(bytes(BLOCK))


def header(entry: Entry, mtime: int) -> bytes:
    """The tar header block(s) of one entry."""
    fast = _ustar_header(entry, mtime)
    return fast if fast is not None else _pax_header(entry, mtime)


_SIZE_LIMIT = 8**11
_ID_LIMIT = 8**7
_TAIL = b"ustar\x0000" + bytes(32 + 32 + 8 + 8 + 155 + 12)
_FIXED_SUM = sum(_TAIL) + sum(b" " * 8)


def _ustar_header(entry: Entry, mtime: int) -> bytes | None:
    """The one-block header tarfile's PAX writer produces when no PAX record is needed.

    tarfile spends most of a small file's time building this block; the
    common case (ASCII names up to 100 bytes, no xattrs, small numbers) is
    encoded here directly, byte for byte as tarfile does (a test compares).
    """
    name = entry.path + "/" if entry.kind is Kind.DIR else entry.path
    size = entry.size if entry.kind is Kind.FILE else 0
    if (
        entry.xattrs
        or len(name) > 100
        or len(entry.linkname) > 100
        or not (name.isascii() and entry.linkname.isascii())
        or not (0 <= entry.uid < _ID_LIMIT and 0 <= entry.gid < _ID_LIMIT)
        or not (0 <= size < _SIZE_LIMIT and 0 <= mtime < _SIZE_LIMIT)
    ):
        return None
    name_bytes, link_bytes = name.encode("ascii"), entry.linkname.encode("ascii")
    numbers = b"%07o\0%07o\0%07o\0%011o\0%011o\0" % (
        entry.mode & 0o7777,
        entry.uid,
        entry.gid,
        size,
        mtime,
    )
    kind = _TYPES[entry.kind]
    # The checksum counts its own field as 8 spaces; NUL padding adds nothing.
    checksum = sum(name_bytes) + sum(numbers) + kind[0] + sum(link_bytes) + _FIXED_SUM
    return b"".join(
        (
            name_bytes.ljust(100, b"\0"),
            numbers,
            b"%06o\0 " % checksum,
            kind,
            link_bytes.ljust(100, b"\0"),
            _TAIL,
        )
    )


def _pax_header(entry: Entry, mtime: int) -> bytes:
    info = tarfile.TarInfo(entry.path)
    info.type = _TYPES[entry.kind]
    info.mode = entry.mode
    info.uid, info.gid = entry.uid, entry.gid
    info.uname = info.gname = ""
    info.mtime = mtime
    info.size = entry.size if entry.kind is Kind.FILE else 0
    info.linkname = entry.linkname
    if entry.xattrs:
        info.pax_headers = {
            f"SCHILY.xattr.{name}": value.decode("utf-8", "surrogateescape")
            for name, value in entry.xattrs
        }
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def read_exactly(stream: BinaryIO, size: int, write: Write) -> bool:
    """Pass ``size`` bytes of ``stream`` to ``write`` in 1 MiB pieces; False unless it then ends."""
    done = 0
    while done < size:
        chunk = stream.read(min(READ_SIZE, size - done))
        if not chunk:
            return False
        write(chunk)
        done += len(chunk)
    return not stream.read(1)


def copy_stream(write: Write) -> Copy:
    """A ``Copy`` that reads the entry's content stream and passes it to ``write``."""

    def copy(entry: Entry, content: Content) -> bool:
        with content.open() as stream:
            return read_exactly(stream, content.size, write)

    return copy


def write_entry(entry: Entry, mtime: int, write: Write, copy: Copy) -> None:
    """Write one member: header, content, padding. The content size is re-checked."""
    write(header(entry, mtime))
    if entry.kind is not Kind.FILE or entry.content is None:
        return
    size = entry.content.size
    if not copy(entry, entry.content):
        raise LayerError(
            f"/{entry.path} changed size while the layer was written "
            f"(expected {size} bytes); do not modify the build context during a build"
        )
    if size % BLOCK:
        write(_PAD[: BLOCK - size % BLOCK])


def tar_size(entries: Iterable[Entry]) -> int:
    """The tar stream's size when no entry needs a PAX header (a progress bar's total)."""
    blocks = sum(1 + -(-entry.size // BLOCK) for entry in entries)
    return (blocks + 2) * BLOCK


def write_tar(entries: Iterable[Entry], mtime: int, write: Write, copy: Copy | None = None) -> None:
    """Encode entries, in the order given, as one tar stream.

    ``copy(entry, content)``, when given, moves a file's exact bytes into the same
    sink without a detour through ``write`` (the layer builder reads straight
    into its chunk buffers); it returns False when the content's size is not
    the one recorded.
    """
    copy = copy or copy_stream(write)
    for entry in entries:
        write_entry(entry, mtime, write, copy)
    write(bytes(2 * BLOCK))
