"""Writing images as tar archives: ``oci-archive`` and ``docker-archive``.

Both are deterministic (members sorted by name, every mtime the image's
created time, uid/gid 0, no user or group names) and atomic: the tar is
written to a temporary name beside the target and renamed when complete.

A docker-archive is the Docker ≥25 ``save`` layout: an OCI layout
(``oci-layout``, ``index.json``, ``blobs/``) plus ``manifest.json`` and
``repositories`` whose paths point into ``blobs/``, so ``docker load`` of any
age, ``podman load`` and skopeo all read it. It holds one platform.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

from builder.atomic import atomic_write
from builder.errors import DigestMismatch, ImageError, LayoutError
from builder.formats.layout import LAYOUT_FILE, Blob
from builder.image.store import SourceImage, resolve_image
from builder.model import (
    ANNOTATION_REF_NAME,
    INDEX_TYPES,
    OCI_INDEX,
    OCI_LAYER_ZSTD,
    Descriptor,
    Platform,
    canonical_json,
)

DEFAULT_NAME = "bale"
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"


class BlobStore:
    """A Store over blobs already in hand (a build's layers, config, manifests)."""

    def __init__(self, blobs: Sequence[Blob], name: str = "the built image") -> None:
        self.blobs = {blob.descriptor.digest: blob for blob in blobs}
        self.name = name

    def open(self, descriptor: Descriptor) -> BinaryIO:
        blob = self.blobs.get(descriptor.digest)
        if blob is None:
            raise ImageError(f"{self.name}: blob {descriptor.digest} is missing")
        return blob.open()


def full_name(name: str) -> str:
    """Docker's fully qualified form: ``app`` → ``docker.io/library/app``."""
    first, sep, _ = name.partition("/")
    if not sep:
        return f"docker.io/library/{name}"
    if "." in first or ":" in first or first == "localhost":
        return name
    return f"docker.io/{name}"


def write_oci_archive(
    path: Path, blobs: Sequence[Blob], root: Descriptor, tags: Sequence[str], mtime: int
) -> None:
    """A tar of an OCI layout holding every blob, ``index.json`` naming ``root`` per tag."""
    entries = [
        Descriptor(root.media_type, root.digest, root.size, {ANNOTATION_REF_NAME: t}).to_json()
        for t in tags
    ] or [root.to_json()]
    files = {
        "oci-layout": canonical_json(LAYOUT_FILE),
        "index.json": _index(entries),
    }
    _write_tar(path, files, blobs, mtime)


def write_docker_archive(
    path: Path,
    blobs: Sequence[Blob],
    root: Descriptor,
    name: str,
    tags: Sequence[str],
    platform: Platform | None,
    mtime: int,
) -> None:
    """A ``docker load`` tarball of one platform's image, tagged ``name:tag`` per tag."""
    store = BlobStore(blobs)
    image = _one_platform(store, root, platform, path)
    zstd = [d for d in image.layers if d.media_type == OCI_LAYER_ZSTD]
    if zstd:
        raise ImageError(
            f"docker-archive:{path}: the image has zstd layers, which older 'docker load' "
            'cannot read; set compression = "gzip" on its [[layers]] for a docker-archive'
        )
    needed = {image.manifest.digest, image.config.digest, *(d.digest for d in image.layers)}
    chosen = [b for b in blobs if b.descriptor.digest in needed]
    repo_tags = [f"{name}:{tag}" for tag in tags]
    manifest = [
        {
            "Config": _blob_name(image.config),
            "RepoTags": repo_tags,
            "Layers": [_blob_name(d) for d in image.layers],
        }
    ]
    repositories = {name: {tag: image.config.digest.encoded for tag in tags}} if tags else {}
    entries = [
        Descriptor(
            image.manifest.media_type,
            image.manifest.digest,
            image.manifest.size,
            {ANNOTATION_IMAGE_NAME: f"{full_name(name)}:{tag}", ANNOTATION_REF_NAME: tag},
        ).to_json()
        for tag in tags
    ] or [
        Descriptor(image.manifest.media_type, image.manifest.digest, image.manifest.size).to_json()
    ]
    files = {
        "oci-layout": canonical_json(LAYOUT_FILE),
        "index.json": _index(entries),
        "manifest.json": canonical_json(manifest),
        "repositories": canonical_json(repositories),
    }
    _write_tar(path, files, chosen, mtime)


def _one_platform(
    store: BlobStore, root: Descriptor, platform: Platform | None, path: Path
) -> SourceImage:
    try:
        return resolve_image(store, root, platform)
    except ImageError as exc:
        if root.media_type not in INDEX_TYPES:
            raise
        raise ImageError(
            f"docker-archive:{path} holds one platform, and {exc}; build it with one "
            "--platform (e.g. bale build --platform linux/amd64 -o docker-archive:FILE)"
        ) from None


def _index(entries: list[dict[str, object]]) -> bytes:
    return canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})


def _blob_name(descriptor: Descriptor) -> str:
    return f"blobs/{descriptor.digest.algorithm}/{descriptor.digest.encoded}"


def _write_tar(path: Path, files: Mapping[str, bytes], blobs: Sequence[Blob], mtime: int) -> None:
    """Members sorted by name, into a temp file renamed over ``path`` once complete."""
    if path.is_dir():
        raise LayoutError(f"{path} is a directory; an archive output needs a file name")
    unique = {blob.descriptor.digest: blob for blob in blobs}
    members: dict[str, Blob | bytes | None] = {name: data for name, data in files.items()}
    for digest, blob in unique.items():
        members["blobs/"] = None
        members[f"blobs/{digest.algorithm}/"] = None
        members[_blob_name(blob.descriptor)] = blob
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with (
            atomic_write(path) as out,
            tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for name in sorted(members):
                _add(tar, name, members[name], mtime)
    except OSError as exc:
        raise LayoutError(f"cannot write the archive {path}: {exc}") from exc


def _add(tar: tarfile.TarFile, name: str, content: Blob | bytes | None, mtime: int) -> None:
    info = tarfile.TarInfo(name.rstrip("/"))
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if content is None:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
        return
    info.mode = 0o644
    if isinstance(content, bytes):
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
        return
    want = content.descriptor
    info.size = want.size
    with content.open() as stream:
        reader = _HashingReader(stream, hashlib.new(want.digest.algorithm))
        tar.addfile(info, reader)
        if reader.size != want.size or reader.hasher.hexdigest() != want.digest.encoded:
            raise DigestMismatch(
                f"blob {want.digest} changed before it was archived; rebuild the image"
            )


class _HashingReader:
    """Hashes what ``tarfile`` reads through it."""

    def __init__(self, stream: BinaryIO, hasher: hashlib._Hash) -> None:
        self.stream, self.hasher, self.size = stream, hasher, 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.hasher.update(data)
        self.size += len(data)
        return data
