"""The merged filesystem below a layer (path → attributes, whiteouts applied),
and the whiteouts that ``delete``/``opaque`` make on it.

Built once per image from the base layers' tar headers (streamed, their
diff_ids checked on the way) and then from each bale layer's entries. It
answers what delete globs match and what /etc/passwd and /etc/group hold.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol, cast

from builder.errors import DigestMismatch, ImageError, SourceError
from builder.layer.decompress import DECODE_ERRORS, decompressed
from builder.layer.entries import (
    TAR_KINDS,
    Entry,
    InlineContent,
    Kind,
)
from builder.layer.filebody import (
    ACCOUNTS,
    KEEP_CONTENT,
    NO_BODY,
    Body,
    FileBody,
    Reading,
    feed_bodies,
)
from builder.layer.tarcheck import BoundedTarInfo, TarStream
from builder.model import (
    OPAQUE_MARKER,
    WHITEOUT_PREFIX,
    Descriptor,
    Digest,
    VerifiedReader,
    layer_codec,
)
from builder.spec.layers import glob_matcher
from builder.spec.values import LayerSpec


@dataclass(frozen=True, slots=True)
class Node:
    """What a path is in the merged view; ``kind`` None for devices, FIFOs and sockets."""

    kind: Kind | None
    mode: int
    uid: int = 0
    gid: int = 0
    linkname: str = ""
    data: bytes | None = None
    sha256: str = ""
    sha1: str = ""


@dataclass
class LowerFS:
    nodes: dict[str, Node] = field(default_factory=dict)

    def apply(self, members: Iterable[tuple[str, Node]]) -> None:
        """Apply one layer: its whiteouts to what is below, then its other members."""
        items = list(members)
        for path, _ in items:
            parent, _, name = path.rpartition("/")
            if name == OPAQUE_MARKER:
                self._remove_children(parent)
            elif name.startswith(WHITEOUT_PREFIX):
                self._remove(f"{parent}/{name[4:]}" if parent else name[4:])
        for path, node in items:
            if path.rpartition("/")[2].startswith(WHITEOUT_PREFIX):
                continue
            old = self.nodes.get(path)
            if old is not None and not (old.kind is Kind.DIR and node.kind is Kind.DIR):
                self._remove(path)
            self.nodes[path] = node

    def _remove(self, path: str) -> None:
        self.nodes.pop(path, None)
        self._remove_children(path)

    def _remove_children(self, path: str) -> None:
        prefix = f"{path}/" if path else ""
        for key in [k for k in self.nodes if k.startswith(prefix) and k != path]:
            del self.nodes[key]

    def get(self, path: str) -> Node | None:
        return self.nodes.get(path)

    def glob(self, pattern: str) -> list[str]:
        """The top-most paths an absolute glob (image.toml's gitignore dialect) matches.

        A matched directory's contents match with it; only the directory is returned.
        """
        matcher = glob_matcher([pattern])
        hits = {
            path
            for path, node in self.nodes.items()
            if matcher.match_file(path + "/" if node.kind is Kind.DIR else path)
        }
        return sorted(path for path in hits if not _covered(path, hits))

    def content(self, path: str) -> bytes | None:
        node = self.nodes.get(path)
        return node.data if node is not None and node.kind is Kind.FILE else None


def entry_members(entries: Iterable[Entry]) -> Iterator[tuple[str, Node]]:
    """Entries of a bale layer as merged-view members (account files with their bytes)."""
    for entry in entries:
        data = None
        if entry.path in KEEP_CONTENT and entry.kind is Kind.FILE and entry.content is not None:
            with entry.content.open() as stream:
                data = stream.read()
        yield entry.path, Node(entry.kind, entry.mode, entry.uid, entry.gid, entry.linkname, data)


def _norm(name: str) -> str:
    return "/".join(p for p in name.split("/") if p not in ("", "."))


def tar_readings(
    stream: TarStream, where: str, readings: Sequence[Reading]
) -> Iterator[tuple[str, list[Node]]]:
    """Each member of an uncompressed tar stream as one node per reading (its file's
    bytes read once for all of them); checks the stream's end."""
    try:
        with tarfile.open(fileobj=stream, mode="r|", tarinfo=BoundedTarInfo) as tar:  # type: ignore[call-overload]
            for info in tar:
                path = _norm(info.name)
                if not path:
                    continue
                bodies = _bodies(tar, info, path, readings)
                linkname = _norm(info.linkname) if info.islnk() else info.linkname
                head = (TAR_KINDS.get(info.type), info.mode & 0o7777, info.uid, info.gid, linkname)
                yield path, [Node(*head, *body) for body in bodies]
            stream.finish(tar.offset)
    except tarfile.TarError as exc:
        raise ImageError(f"{where}: not a readable tar: {exc}") from None


def _bodies(
    tar: tarfile.TarFile, info: tarfile.TarInfo, path: str, readings: Sequence[Reading]
) -> list[Body]:
    """What each reading takes of a member: a regular file's body, else nothing.

    The member is read only when a reading wants some of its bytes.
    """
    if not info.isreg():
        return [NO_BODY] * len(readings)
    bodies = [FileBody(reading, path, info.size) for reading in readings]
    if any(body.wanted for body in bodies):
        member = _Member(tar, info)
        feed_bodies(member.read, bodies, member.skip if member.direct else None)
    return [body.result() for body in bodies]


class _Member:
    """A regular member's bytes, read or passed over straight from the tar stream.

    ``extractfile`` wraps each member in a buffered reader that copies every
    read; an ordinary member's bytes lie in one run of the stream, so they are
    taken from it directly (tarfile's next member seeks on from wherever the
    read stopped). A sparse member goes through ``extractfile``, which maps it
    (and cannot seek on a stream): it is read, never skipped.
    """

    def __init__(self, tar: tarfile.TarFile, info: tarfile.TarInfo) -> None:
        self._left = info.size
        self._stream = None if info.sparse else cast(BinaryIO, tar.fileobj)
        self._extracted = tar.extractfile(info) if self._stream is None else None

    @property
    def direct(self) -> bool:
        """Whether the bytes come straight from the stream (and ``skip`` may be used)."""
        return self._stream is not None

    def read(self, size: int) -> bytes:
        if self._extracted is not None:
            return self._extracted.read(size)
        assert self._stream is not None
        data = self._stream.read(min(size, self._left))
        self._left -= len(data)
        return data

    def skip(self, size: int) -> int:
        """Pass over up to ``size`` bytes unread; how many were passed (``direct`` only)."""
        assert self._stream is not None
        size = min(size, self._left)
        self._stream.seek(self._stream.tell() + size)
        self._left -= size
        return size


class StoredLayer(Protocol):
    """A layer blob that can be re-read, with the diff_id its config gives it."""

    @property
    def descriptor(self) -> Descriptor: ...

    @property
    def diff_id(self) -> Digest: ...

    def open(self) -> BinaryIO: ...


def read_layer(
    stream: BinaryIO,
    descriptor: Descriptor,
    diff_id: Digest,
    where: str,
    reading: Reading = ACCOUNTS,
) -> list[tuple[str, Node]]:
    """A base layer's members; raises DigestMismatch when it does not hash to ``diff_id``."""
    return read_layer_for(stream, descriptor, diff_id, where, (reading,))[0]


def read_layer_for(
    stream: BinaryIO,
    descriptor: Descriptor,
    diff_id: Digest,
    where: str,
    readings: Sequence[Reading],
) -> list[list[tuple[str, Node]]]:
    """A base layer's members as each reading sees them, from one decompression.

    Raises DigestMismatch when the layer does not hash to ``diff_id``.
    """
    found: list[list[tuple[str, Node]]] = [[] for _ in readings]
    with stream:
        raw = VerifiedReader(stream, descriptor, f"{where}: layer")
        tar = TarStream(decompressed(cast(BinaryIO, raw), layer_codec(descriptor.media_type)))
        try:
            for path, nodes in tar_readings(tar, where, readings):
                for members, node in zip(found, nodes, strict=True):
                    members.append((path, node))
            raw.finish()
        except DECODE_ERRORS as exc:
            raise ImageError(
                f"{where}: cannot decompress layer {descriptor.digest}: {exc}"
            ) from None
    actual = tar.hasher.hexdigest()
    if actual != diff_id.encoded:
        raise DigestMismatch(
            f"{where}: layer {descriptor.digest} uncompresses to sha256:{actual}, but the "
            f"config says {diff_id}; the base image is corrupt"
        )
    return found


def _whiteout(path: str) -> str:
    parent, _, name = path.rpartition("/")
    return f"{parent}/{WHITEOUT_PREFIX}{name}" if parent else WHITEOUT_PREFIX + name


def _matches(layer: LayerSpec, lower: LowerFS, key: str, pattern: str) -> list[str]:
    if pattern == "/":
        raise SourceError(f"{layer.where}: {key} '/': the root cannot be deleted")
    found = lower.glob(pattern)
    if not found and not layer.missing_ok:
        raise SourceError(
            f"{layer.where}: {key} '{pattern}' matches nothing in the filesystem below "
            f"layer '{layer.name}'; fix the path or set missing_ok = true"
        )
    return found


def _covered(path: str, deleted: set[str]) -> bool:
    parts = path.split("/")
    return any("/".join(parts[:i]) in deleted for i in range(1, len(parts)))


def whiteout_entries(layer: LayerSpec, lower: LowerFS) -> list[Entry]:
    """One ``.wh.<name>`` per deleted path, one ``.wh..wh..opq`` per opaque directory."""
    deleted = {p for pattern in layer.delete for p in _matches(layer, lower, "delete", pattern)}
    opaque: set[str] = set()
    for pattern in layer.opaque:
        for path in _matches(layer, lower, "opaque", pattern):
            node = lower.get(path)
            if node is None or node.kind is not Kind.DIR:
                raise SourceError(
                    f"{layer.where}: opaque '{pattern}': /{path} is not a directory below"
                )
            opaque.add(path)
    marks = [_whiteout(p) for p in deleted if not _covered(p, deleted)]
    marks += [
        f"{p}/{OPAQUE_MARKER}" for p in opaque if p not in deleted and not _covered(p, deleted)
    ]
    return [Entry(path, Kind.FILE, 0o644, content=InlineContent(b"")) for path in sorted(marks)]
