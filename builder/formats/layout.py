"""OCI image layout: write atomically, read back.

Contract of ``write_layout``: it holds the layout's lock
(``builder.locking``) throughout. When it returns, every blob is on disk
under its digest (fsynced) and ``index.json`` names ``root`` once per tag.
When it raises before ``index.json`` was replaced, the layout is as it was
(blobs it added are removed, a directory it created is removed); once
``index.json`` names the new image, nothing is removed.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from builder.atomic import atomic_write, sweep
from builder.errors import DigestMismatch, ImageError, LayoutError
from builder.image.blobread import open_regular
from builder.image.documents import MAX_DOCUMENT, check_index, parse_json
from builder.image.store import pick_entry, ref_names
from builder.locking import Note, locked_dir
from builder.model import (
    ANNOTATION_REF_NAME,
    OCI_INDEX,
    Blob,
    BlobCheck,
    Descriptor,
    Digest,
    canonical_json,
)

LAYOUT_FILE = {"imageLayoutVersion": "1.0.0"}
COPY_SIZE = 1 << 20


def blob_path(root: Path, descriptor: Descriptor) -> Path:
    return root / descriptor.digest.blob_path


def _write_atomic(path: Path, chunks: Iterable[bytes]) -> None:
    with atomic_write(path) as out:
        for chunk in chunks:
            out.write(chunk)


def _verified_chunks(blob: Blob) -> Iterable[bytes]:
    """The blob's bytes, checked against its descriptor before the last chunk is released."""
    check = BlobCheck(blob.descriptor)
    with blob.open() as stream:
        pending = b""
        while chunk := stream.read(COPY_SIZE):
            if pending:
                yield pending
            if not check.update(chunk):
                break
            pending = chunk
    if not check.ok:
        raise _changed(blob.descriptor, check.size)
    if pending:
        yield pending


def _changed(want: Descriptor, size: int) -> DigestMismatch:
    return DigestMismatch(
        f"blob {want.digest} changed before it was written ({size} bytes read, "
        f"{want.size} expected); rebuild the image"
    )


def _copy_file(source: Path, path: Path, want: Descriptor) -> None:
    """A layer blob bale built or the cache just verified: copied by the kernel, not re-hashed.

    Its digest was computed as it was written, or checked when the cache
    reused it, so only the size is checked here.
    """
    with atomic_write(path) as out, open(source, "rb") as stream:
        size = os.fstat(stream.fileno()).st_size
        if size != want.size:
            raise _changed(want, size)
        if not _kernel_copy(stream.fileno(), out.fileno(), size):
            shutil.copyfileobj(stream, out)


def _kernel_copy(source: int, target: int, size: int) -> bool:
    """copy_file_range: no trip through user space (a reflink where the file system can).

    False, with nothing written, where the kernel or file system cannot do it.
    """
    if not hasattr(os, "copy_file_range"):
        return False
    done = 0
    while done < size:
        try:
            moved = os.copy_file_range(source, target, size - done)
        except OSError as exc:
            if done or exc.errno not in _NO_KERNEL_COPY:
                raise
            return False
        if not moved:
            raise DigestMismatch(
                f"a layer blob shrank while it was copied ({done} of {size} bytes); "
                "rebuild the image"
            )
        done += moved
    return True


_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM}


def _open_layout(root: Path) -> None:
    """Make ``root`` a layout unless it is a directory holding something else."""
    marker = root / "oci-layout"
    if any(root.iterdir()) and not marker.exists():
        raise LayoutError(
            f"{root} is a non-empty directory without an 'oci-layout' file; "
            "choose a new or empty directory, or an existing OCI layout"
        )
    if not marker.exists():
        _write_atomic(marker, [canonical_json(LAYOUT_FILE)])


def sweep_layout(root: Path) -> None:
    """Remove the temps killed bales left in the layout (the caller holds its lock)."""
    sweep(root)
    blobs = root / "blobs"
    if blobs.is_dir():
        for algorithm in blobs.iterdir():
            sweep(algorithm)


def read_index(root: Path) -> dict[str, Any]:
    path = root / "index.json"
    if not path.exists():
        return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    try:
        with open_regular(path, str(root), inside=root) as stream:
            data = stream.read(MAX_DOCUMENT + 1)
    except OSError as exc:
        raise LayoutError(f"{path}: not a readable JSON image index: {exc}") from None
    document = parse_json(data, str(path))
    if not isinstance(document, dict) or not isinstance(document.get("manifests"), list):
        raise LayoutError(f"{path}: not an OCI image index (no 'manifests' array)")
    return document


def _updated_index(
    index: dict[str, Any],
    root: Descriptor,
    tags: Sequence[str],
    referrers: Sequence[Descriptor] = (),
) -> bytes:
    """Move ``tags`` to ``root`` and list ``referrers`` once each, untagged; keep every
    other image the layout holds."""
    listed = {str(referrer.digest) for referrer in referrers}
    kept = []
    for item in index["manifests"]:
        annotations = item.get("annotations") or {}
        if tags and annotations.get(ANNOTATION_REF_NAME) in tags:
            continue
        if not tags and not annotations and item.get("digest") == str(root.digest):
            continue
        if item.get("digest") in listed and ANNOTATION_REF_NAME not in annotations:
            continue
        kept.append(item)
    new = [
        Descriptor(
            root.media_type, root.digest, root.size, {ANNOTATION_REF_NAME: tag}, root.platform
        ).to_json()
        for tag in tags
    ] or [root.to_json()]
    new += [referrer.to_json() for referrer in referrers]
    return canonical_json({**index, "manifests": kept + new})


def write_layout(
    root: Path,
    blobs: Sequence[Blob],
    index_root: Descriptor,
    tags: Sequence[str],
    referrers: Sequence[Descriptor] = (),
    note: Note | None = None,
) -> None:
    """Add ``blobs``, point ``tags`` at ``index_root`` and list ``referrers``; all or nothing.

    The layout is locked meanwhile (``note`` hears of a wait), so concurrent
    builds into it take turns and each keeps its tags.
    """
    if root.is_symlink() or (root.exists() and not root.is_dir()):
        raise LayoutError(f"{root} exists and is not a directory; choose another --output")
    created = not root.exists()
    try:
        with locked_dir(root, f"the OCI layout {root}", note):
            _write_locked(root, blobs, index_root, tags, referrers, created)
    except OSError as exc:
        raise LayoutError(f"cannot write the OCI layout {root}: {exc}") from exc


def _write_locked(
    root: Path,
    blobs: Sequence[Blob],
    index_root: Descriptor,
    tags: Sequence[str],
    referrers: Sequence[Descriptor],
    created: bool,
) -> None:
    """``created``: this build made ``root``; it removes it on failure only if it is
    still empty once locked (a concurrent build may have filled it first)."""
    added: list[Path] = []
    new_index = b""
    try:
        sweep_layout(root)
        created = created and not any(root.iterdir())
        _open_layout(root)
        index = read_index(root)
        for blob in blobs:
            path = blob_path(root, blob.descriptor)
            if path.exists() and path.stat().st_size == blob.descriptor.size:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            if blob.verified_file is not None:
                _copy_file(blob.verified_file, path, blob.descriptor)
            else:
                _write_atomic(path, _verified_chunks(blob))
            added.append(path)
        for directory in {path.parent for path in added}:
            _fsync_dir(directory)
        new_index = _updated_index(index, index_root, tags, referrers)
        if added or _current(root / "index.json") != new_index:
            _write_atomic(root / "index.json", [new_index])
            _fsync_dir(root)
    except BaseException:
        if not _published(root, new_index):
            for path in added:
                path.unlink(missing_ok=True)
            if created:
                shutil.rmtree(root, ignore_errors=True)
        raise


def _published(root: Path, new_index: bytes) -> bool:
    """Whether ``index.json`` already is ``new_index``: then its blobs must stay.

    Read back rather than tracked, so an interrupt just after the rename
    still counts; an index that cannot be read counts as published (keep all).
    """
    if not new_index:
        return False
    try:
        return (root / "index.json").read_bytes() == new_index
    except FileNotFoundError:
        return False
    except OSError:
        return True


def _current(path: Path) -> bytes | None:
    """The bytes of ``path`` now, None when unreadable: an unchanged index is not rewritten."""
    try:
        return path.read_bytes()
    except OSError:
        return None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LayoutStore:
    """An OCI image layout directory."""

    def __init__(self, root: Path) -> None:
        if not (root / "oci-layout").is_file() or not (root / "index.json").is_file():
            raise LayoutError(f"{root} is not an OCI image layout (no oci-layout and index.json)")
        self.root = root
        self.name = f"oci:{root}"

    def open(self, descriptor: Descriptor) -> BinaryIO:
        path = blob_path(self.root, descriptor)
        if not path.exists() and not path.is_symlink():
            raise LayoutError(f"{self.name}: blob {descriptor.digest} is missing")
        return open_regular(path, self.name, inside=self.root)

    def close(self) -> None:
        """Nothing to release; present so every local store closes alike."""

    def index_entries(self) -> list[Descriptor]:
        """Every entry of index.json: tagged images, untagged ones and referrers."""
        where = f"{self.name}: index.json"
        with open_regular(self.root / "index.json", self.name, inside=self.root) as stream:
            data = stream.read(MAX_DOCUMENT + 1)
        index = check_index(parse_json(data, where), where)
        return [Descriptor.from_json(m) for m in index.get("manifests") or []]

    def lookup(self, tag: str) -> Descriptor:
        """The index.json entry named ``tag``; with no tag, the only image."""
        return pick_entry(self.index_entries(), tag, self.name, ref_names)

    def stored_blobs(self) -> list[Descriptor]:
        """Every regular file under ``blobs/`` named by a digest, listed or not (no media type)."""
        found = []
        for path in sorted((self.root / "blobs").glob("*/*")):
            digest = digest_named(path.parent.name, path.name)
            if digest is not None and path.is_file() and not path.is_symlink():
                found.append(Descriptor("", digest, path.lstat().st_size))
        return found


def digest_named(algorithm: str, encoded: str) -> Digest | None:
    """The digest a blob's file name spells (``blobs/<alg>/<hex>``), None for any other name."""
    try:
        return Digest(algorithm, encoded)
    except ImageError:
        return None
