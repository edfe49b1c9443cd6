"""Deterministic tar encoding.

PAX format (long names, non-ASCII, huge files), every mtime set to one
integer, uname/gname empty, no atime/ctime records, and only 1024 zero bytes
at the end, as Go's archive/tar writes.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable, Iterable

from builder.entries import Entry, Kind
from builder.errors import LayerError

BLOCK = 512
READ_SIZE = 1 << 20
_TYPES = {
    Kind.FILE: tarfile.REGTYPE,
    Kind.DIR: tarfile.DIRTYPE,
    Kind.SYMLINK: tarfile.SYMTYPE,
    Kind.HARDLINK: tarfile.LNKTYPE,
}

Write = Callable[[bytes], object]


def header(entry: Entry, mtime: int) -> bytes:
    """The tar header block(s) of one entry."""
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


def write_entry(entry: Entry, mtime: int, write: Write) -> None:
    """Write one member: header, content, padding. The content size is re-checked."""
    write(header(entry, mtime))
    if entry.kind is not Kind.FILE or entry.content is None:
        return
    expected = entry.content.size
    written = 0
    with entry.content.open() as stream:
        while written < expected:
            chunk = stream.read(min(READ_SIZE, expected - written))
            if not chunk:
                break
            write(chunk)
            written += len(chunk)
        if written != expected or stream.read(1):
            raise LayerError(
                f"/{entry.path} changed size while the layer was written "
                f"(expected {expected} bytes); do not modify the build context during a build"
            )
    if expected % BLOCK:
        write(bytes(BLOCK - expected % BLOCK))


def write_tar(entries: Iterable[Entry], mtime: int, write: Write) -> None:
    """Encode entries, in the order given, as one tar stream."""
    for entry in entries:
        write_entry(entry, mtime, write)
    write(bytes(2 * BLOCK))
