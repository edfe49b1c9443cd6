"""``[[layers]] tar = FILE``: a prebuilt root filesystem, checked and normalised as entries.

The compression is read from the content (python-magic). The tarball is read
once, as it decompresses: each header is checked against the tar limits
before anything after it is read, and only the bytes of regular files are
kept, in a data file in the build's work directory that entries point into.
Absolute paths, '..', links leaving the root, writes through a symlink and
hardlinks to anything but an earlier file of the same tarball are refused
before anything is written. Whiteouts inside the tarball are kept.
"""

from __future__ import annotations

import posixpath
import shutil
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

from builder.errors import SourceError
from builder.layer.decompress import DECODE_ERRORS, decompressed, sniff
from builder.layer.entries import TAR_KINDS, Entry, Kind, TarMember
from builder.layer.tarcheck import BoundedTarInfo, TarLimitError, TarStream

_XATTR = "SCHILY.xattr."
# Bytes copied from a member to the data file at a time.
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Imported:
    """The entries of a tarball and its hardlink groups (paths sharing one inode)."""

    entries: tuple[Entry, ...]
    groups: tuple[tuple[str, ...], ...]


def _codec(stream: BinaryIO, source: Path, where: str) -> str:
    """The tarball's compression, read from its first bytes (the stream is rewound)."""
    try:
        codec = sniff(stream.read(8192))
    except SourceError as exc:
        raise SourceError(f"{where}: {source}: {exc}") from None
    stream.seek(0)
    return codec


def _member_path(name: str, where: str) -> str:
    if name.startswith("/"):
        raise SourceError(f"{where}: member '{name}' has an absolute path; refusing the tarball")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise SourceError(f"{where}: member '{name}' contains '..'; refusing the tarball")
    return "/".join(parts)


def _check_symlink(path: str, target: str, where: str) -> None:
    if target.startswith("/"):
        return
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    if resolved == ".." or resolved.startswith("../"):
        raise SourceError(
            f"{where}: symlink member '{path}' -> '{target}' points outside the root; "
            "refusing the tarball"
        )


@dataclass
class _Reader:
    """State while walking one tarball: entries so far, symlinks, hardlink groups."""

    plain: Path
    data: BinaryIO
    where: str
    owner: tuple[int, int] | None
    entries: dict[str, Entry] = field(default_factory=dict)
    symlinks: set[str] = field(default_factory=set)
    groups: dict[str, list[str]] = field(default_factory=dict)

    def add(self, tar: tarfile.TarFile, info: tarfile.TarInfo) -> None:
        path = _member_path(info.name, self.where)
        if not path:
            return
        label = f"{self.where}: member '{info.name}'"
        if any(p in self.symlinks for p in _ancestors(path)):
            raise SourceError(f"{label} is written through a symlink; refusing the tarball")
        kind = TAR_KINDS.get(info.type)
        if kind is None:
            raise SourceError(
                f"{label} is a device, FIFO or other special file; only files, "
                "directories and links can be imported"
            )
        if path in self.entries:
            raise SourceError(f"{label} appears twice; a layer may hold each path once")
        self.entries[path] = self._entry(tar, info, path, kind, label)

    def _copy(self, tar: tarfile.TarFile, info: tarfile.TarInfo) -> TarMember:
        """The member's bytes appended to the data file, as they stream past."""
        offset = self.data.tell()
        extracted = tar.extractfile(info)
        if extracted is not None:
            shutil.copyfileobj(extracted, self.data, _CHUNK)
        return TarMember(str(self.plain), offset, info.size, "")

    def _entry(
        self, tar: tarfile.TarFile, info: tarfile.TarInfo, path: str, kind: Kind, label: str
    ) -> Entry:
        uid, gid = self.owner if self.owner is not None else (info.uid, info.gid)
        xattrs = tuple(
            sorted(
                (key[len(_XATTR) :], value.encode("utf-8", "surrogateescape"))
                for key, value in info.pax_headers.items()
                if key.startswith(_XATTR)
            )
        )
        mode = info.mode & 0o7777
        if kind is Kind.FILE:
            return Entry(path, kind, mode, uid, gid, self._copy(tar, info), xattrs=xattrs)
        if kind is Kind.SYMLINK:
            _check_symlink(path, info.linkname, label)
            self.symlinks.add(path)
            return Entry(path, kind, 0o777, uid, gid, linkname=info.linkname)
        if kind is Kind.DIR:
            return Entry(path, kind, mode, uid, gid, xattrs=xattrs)
        if info.linkname.startswith("/") or ".." in info.linkname.split("/"):
            raise SourceError(
                f"{label} is a hardlink to '{info.linkname}', outside the tarball's root; "
                "refusing the tarball"
            )
        target = _member_path(info.linkname, self.where)
        first = self.entries.get(target)
        if first is None or first.kind is not Kind.FILE:
            raise SourceError(
                f"{label} is a hardlink to '{info.linkname}', which is not a file "
                "earlier in the tarball; refusing the tarball"
            )
        self.groups.setdefault(target, [target]).append(path)
        return replace(first, path=path)


def import_tar(
    source: Path, work: Path, where: str, owner: tuple[int, int] | None = None
) -> Imported:
    """Every member of the tarball at ``source`` as an entry (hardlinks as groups)."""
    if not source.is_file():
        raise SourceError(f"{where}: {source} is not a file in the build context")
    with open(source, "rb") as raw:
        codec = _codec(raw, source, where)
        fd, name = tempfile.mkstemp(prefix="import-", suffix=".data", dir=work)
        with open(fd, "wb") as data:
            reader = _Reader(Path(name), data, where, owner)
            stream = TarStream(decompressed(raw, codec))
            try:
                _walk(stream, reader)
            except TarLimitError as exc:
                raise SourceError(f"{where}: {source}: {exc}") from None
            except tarfile.TarError as exc:
                raise SourceError(f"{where}: {source} is not a usable tar archive: {exc}") from None
            except DECODE_ERRORS as exc:
                raise SourceError(f"{where}: {source} is not valid {codec} data: {exc}") from None
    groups = tuple(tuple(g) for g in reader.groups.values())
    return Imported(_named(reader.entries.values(), stream.hasher.hexdigest()), groups)


def _named(entries: Iterable[Entry], tar_sha256: str) -> tuple[Entry, ...]:
    """Entries whose members carry the hash of the whole tarball (layer cache keys)."""
    return tuple(
        replace(e, content=replace(e.content, tar_sha256=tar_sha256))
        if isinstance(e.content, TarMember)
        else e
        for e in entries
    )


def _walk(stream: TarStream, reader: _Reader) -> None:
    """Each header checked as it is decompressed; refused at once if it breaks a limit."""
    with tarfile.open(fileobj=stream, mode="r|", tarinfo=BoundedTarInfo) as tar:  # type: ignore[call-overload]
        for info in tar:
            reader.add(tar, info)
        stream.finish(tar.offset)


def _ancestors(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]
