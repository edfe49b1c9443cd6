"""Reading a layer blob back: decompress as it streams, list its entries.

Used by ``inspect --files`` and ``diff``; works on any Store. The blob's
digest and size are checked once the stream has been read to its end.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import stat
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

from builder.errors import ImageError
from builder.image.store import Store
from builder.layer.decompress import DECODE_ERRORS, decompressed
from builder.layer.tarcheck import BoundedTarInfo, TarStream
from builder.model import Descriptor, Digest, VerifiedReader, layer_codec

READ_SIZE = 1 << 20
_KINDS = {
    tarfile.REGTYPE: "file",
    tarfile.AREGTYPE: "file",
    tarfile.DIRTYPE: "dir",
    tarfile.SYMTYPE: "symlink",
    tarfile.LNKTYPE: "hardlink",
    tarfile.CHRTYPE: "char",
    tarfile.BLKTYPE: "block",
    tarfile.FIFOTYPE: "fifo",
}
_TV_TYPE = {"file": "-", "dir": "d", "symlink": "l", "hardlink": "h", "char": "c"}
_TV_TYPE |= {"block": "b", "fifo": "p"}


@dataclass(frozen=True, slots=True)
class FileInfo:
    """One tar entry of a layer, as ``diff`` compares and ``--files`` prints it."""

    path: str
    kind: str
    mode: int
    uid: int
    gid: int
    size: int
    mtime: int
    linkname: str = ""
    xattrs: tuple[tuple[str, str], ...] = ()
    sha256: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "type": self.kind,
            "mode": f"{self.mode:04o}",
            "uid": self.uid,
            "gid": self.gid,
            "size": self.size,
            "mtime": self.mtime,
        }
        if self.linkname:
            out["linkname"] = self.linkname
        if self.xattrs:
            out["xattrs"] = dict(self.xattrs)
        if self.sha256:
            out["sha256"] = self.sha256
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> FileInfo:
        return cls(
            path=obj["path"],
            kind=obj["type"],
            mode=int(obj["mode"], 8),
            uid=obj["uid"],
            gid=obj["gid"],
            size=obj["size"],
            mtime=obj["mtime"],
            linkname=obj.get("linkname", ""),
            xattrs=tuple(sorted((obj.get("xattrs") or {}).items())),
            sha256=obj.get("sha256", ""),
        )


@contextmanager
def uncompressed(store: Store, layer: Descriptor) -> Iterator[TarStream]:
    """The layer's tar bytes; its stored digest is verified when the block ends."""
    with store.open(layer) as raw_stream:
        raw = VerifiedReader(raw_stream, layer, f"{store.name}: layer")
        tar = TarStream(decompressed(cast(BinaryIO, raw), layer_codec(layer.media_type)))
        try:
            yield tar
            tar.drain()
            raw.finish()
        except (*DECODE_ERRORS, tarfile.TarError) as exc:
            raise ImageError(f"{store.name}: layer {layer.digest} cannot be read: {exc}") from None


def measure(store: Store, layer: Descriptor) -> tuple[int, Digest]:
    """Uncompressed size and diff_id of a layer."""
    with uncompressed(store, layer) as tar:
        tar.drain()
    return tar.size, Digest("sha256", tar.hasher.hexdigest())


def layer_files(store: Store, layer: Descriptor) -> list[FileInfo]:
    """Every entry of the layer, in tar order, with a sha256 of each file's content."""
    return layer_listing(store, layer)[0]


def layer_listing(store: Store, layer: Descriptor) -> tuple[list[FileInfo], int, Digest]:
    """``layer_files``, the uncompressed size and the diff_id, in one pass.

    Each header is checked as it is decompressed, so a header beyond the tar
    limits is refused at once rather than after reading the whole layer.
    """
    found = []
    with uncompressed(store, layer) as stream:
        try:
            with tarfile.open(fileobj=stream, mode="r|", tarinfo=BoundedTarInfo) as tar:  # type: ignore[call-overload]
                for member in tar:
                    found.append(_info(tar, member))
                stream.finish(tar.offset)
        except tarfile.TarError as exc:
            raise ImageError(f"{store.name}: layer {layer.digest} is not a tar: {exc}") from None
    return found, stream.size, Digest("sha256", stream.hasher.hexdigest())


def _info(tar: tarfile.TarFile, member: tarfile.TarInfo) -> FileInfo:
    digest = ""
    if member.isfile():
        hasher = hashlib.sha256()
        content = tar.extractfile(member)
        if content is not None:
            while chunk := content.read(READ_SIZE):
                hasher.update(chunk)
        digest = hasher.hexdigest()
    xattrs = tuple(
        sorted(
            (key.removeprefix("SCHILY.xattr."), value)
            for key, value in member.pax_headers.items()
            if key.startswith("SCHILY.xattr.")
        )
    )
    path = member.name.removeprefix("./").strip("/") or "."
    return FileInfo(
        path=path,
        kind=_KINDS.get(member.type, "other"),
        mode=stat.S_IMODE(member.mode),
        uid=member.uid,
        gid=member.gid,
        size=member.size if member.isfile() else 0,
        mtime=int(member.mtime),
        linkname=member.linkname,
        xattrs=xattrs,
        sha256=digest,
    )


def tar_tv(info: FileInfo) -> str:
    """One line like ``tar tv``: type and mode, uid/gid, size, UTC time, path, link."""
    kind = _TV_TYPE.get(info.kind, "?")
    mode = stat.filemode(info.mode)[1:]
    when = dt.datetime.fromtimestamp(info.mtime, dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
    line = f"{kind}{mode} {info.uid}/{info.gid} {info.size:>10} {when} {info.path}"
    if info.kind == "symlink":
        line += f" -> {info.linkname}"
    elif info.kind == "hardlink":
        line += f" link to {info.linkname}"
    return line
