"""Images as tar archives, ``oci-archive`` and ``docker-archive``: written and read.

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
import stat
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, cast

from builder.atomic import atomic_write, sweep
from builder.errors import DigestMismatch, ImageError, LayoutError
from builder.formats.layout import LAYOUT_FILE, digest_named
from builder.image.blobread import open_regular
from builder.image.documents import MAX_DOCUMENT, check_index, expect, parse_json
from builder.image.store import SourceImage, pick_entry, ref_names, resolve_image
from builder.layer.tarcheck import BoundedTarInfo
from builder.locking import Note, locked_dir
from builder.model import (
    ANNOTATION_IMAGE_NAME,
    ANNOTATION_REF_NAME,
    INDEX_TYPES,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    OCI_MANIFEST,
    Blob,
    Descriptor,
    Digest,
    Platform,
    canonical_json,
)

DEFAULT_NAME = "bale"


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
    path: Path,
    blobs: Sequence[Blob],
    root: Descriptor,
    tags: Sequence[str],
    mtime: int,
    note: Note | None = None,
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
    _write_tar(path, files, blobs, mtime, note)


def write_docker_archive(
    path: Path,
    blobs: Sequence[Blob],
    root: Descriptor,
    name: str,
    tags: Sequence[str],
    platform: Platform | None,
    mtime: int,
    note: Note | None = None,
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
    _write_tar(path, files, chosen, mtime, note)


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
    return descriptor.digest.blob_path


def _write_tar(
    path: Path, files: Mapping[str, bytes], blobs: Sequence[Blob], mtime: int, note: Note | None
) -> None:
    """Members sorted by name, into a temp file renamed over ``path`` once complete.

    The parent directory is locked meanwhile, so archives written there take
    turns and the temps of killed bales beside ``path`` can be removed.
    """
    unique = {blob.descriptor.digest: blob for blob in blobs}
    members: dict[str, Blob | bytes | None] = {name: data for name, data in files.items()}
    for digest, blob in unique.items():
        members["blobs/"] = None
        members[f"blobs/{digest.algorithm}/"] = None
        members[_blob_name(blob.descriptor)] = blob
    parent = path.parent if str(path.parent) else Path(".")
    try:
        check_archive_target(path)
        with locked_dir(parent, f"beside the archive {path}", note):
            check_archive_target(path)
            sweep(parent, f".{path.name}.")
            with (
                atomic_write(path) as out,
                tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar,
            ):
                for name in sorted(members):
                    _add(tar, name, members[name], mtime)
    except OSError as exc:
        raise LayoutError(f"cannot write the archive {path}: {exc}") from exc


def check_archive_target(path: Path) -> None:
    """An archive output replaces a regular file or makes a new one, nothing else.

    Renaming over a device (``/dev/null``), a FIFO or a symlink would replace
    it with a regular file: refuse instead.
    """
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISREG(st.st_mode):
        return
    kind = _KINDS.get(stat.S_IFMT(st.st_mode), "not a regular file")
    raise LayoutError(
        f"{path} is {kind}; an archive output must be a new file or a regular file, "
        "which bale replaces. Choose another path"
    )


_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFLNK: "a symbolic link (bale does not write through links)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
}


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
        reader = _HashingReader(stream, want.digest.new_hasher())
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


_CHUNK = 1 << 20


class _TarBlobs:
    """Blobs of a tar file by digest: ``blobs/<alg>/<hex>`` members, plus made-up ones."""

    def __init__(self, path: Path, transport: str) -> None:
        self.path = path
        self.name = f"{transport}:{path}"
        stream = open_regular(path, self.name)
        try:
            self._tar = tarfile.open(  # noqa: SIM115 (closed by close())
                fileobj=stream, mode="r:", tarinfo=BoundedTarInfo
            )
            names = set(self._tar.getnames())
        except (OSError, tarfile.TarError) as exc:
            stream.close()
            raise LayoutError(f"{self.name}: cannot read the archive: {exc}") from None
        self._stream = stream
        self._prefix = "./" if "./index.json" in names or "./manifest.json" in names else ""
        self.has_index = self._prefix + "index.json" in names
        self._members: dict[Digest, str] = {}
        self._documents: dict[Digest, bytes] = {}

    def close(self) -> None:
        self._tar.close()
        self._stream.close()

    def member(self, member: str) -> BinaryIO:
        try:
            stream = self._tar.extractfile(self._prefix + member.removeprefix("./"))
        except (KeyError, tarfile.TarError):
            stream = None
        if stream is None:
            raise LayoutError(f"{self.name}: the archive has no file '{member}'")
        return cast(BinaryIO, stream)

    def open(self, descriptor: Descriptor) -> BinaryIO:
        digest = descriptor.digest
        if digest in self._documents:
            return io.BytesIO(self._documents[digest])
        default = digest.blob_path
        return self.member(self._members.get(digest, default))

    def document(self, member: str) -> Any:
        """A JSON member of the archive (index.json, manifest.json), parsed with limits."""
        with self.member(member) as stream:
            try:
                data = stream.read(MAX_DOCUMENT + 1)
            except (OSError, tarfile.TarError) as exc:
                raise LayoutError(f"{self.name}: cannot read {member}: {exc}") from None
        return parse_json(data, f"{self.name}: {member}")

    def index_entries(self) -> list[Descriptor]:
        where = f"{self.name}: index.json"
        index = check_index(self.document("index.json"), where)
        return [Descriptor.from_json(m) for m in index.get("manifests") or []]


def _all_names(entry: Descriptor) -> set[str]:
    """A tag, a full name and its short forms (docker.io/library/app:1 → app:1)."""
    names = ref_names(entry)
    full = entry.annotations.get(ANNOTATION_IMAGE_NAME, "")
    if full:
        names |= {full, full.removeprefix("docker.io/"), full.removeprefix("docker.io/library/")}
    return names


def _read(stream: BinaryIO, where: str, member: str, size: int = _CHUNK) -> bytes:
    try:
        return stream.read(size)
    except (OSError, tarfile.TarError) as exc:
        raise LayoutError(f"{where}: cannot read {member}: {exc}") from None


class OciArchiveStore(_TarBlobs):
    """``oci-archive:FILE``: an OCI layout packed in a tar."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, "oci-archive")
        if not self.has_index:
            raise LayoutError(f"{self.name} is not an OCI archive (no index.json)")

    def lookup(self, tag: str) -> Descriptor:
        return pick_entry(self.index_entries(), tag, self.name, ref_names)

    def stored_blobs(self) -> list[Descriptor]:
        """Every ``blobs/<alg>/<hex>`` file member, listed in index.json or not."""
        found = []
        for member in self._tar.getmembers():
            parts = member.name.removeprefix(self._prefix).split("/")
            if len(parts) != 3 or parts[0] != "blobs" or not member.isfile():
                continue
            digest = digest_named(parts[1], parts[2])
            if digest is not None:
                found.append(Descriptor("", digest, member.size))
        return sorted(found, key=lambda d: d.digest)


def _layer_media_type(head: bytes) -> str:
    if head.startswith(b"\x1f\x8b"):
        return OCI_LAYER_GZIP
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return OCI_LAYER_ZSTD
    return OCI_LAYER


class DockerArchiveStore(_TarBlobs):
    """``docker-archive:FILE``: what ``docker save`` (or bale) writes."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, "docker-archive")

    def lookup(self, ref: str) -> Descriptor:
        """The image ``ref`` names (``name:tag``, a tag, ``@N``, or the only one)."""
        if self.has_index and not ref.startswith("@"):
            return pick_entry(self.index_entries(), ref, self.name, _all_names)
        return self._made_manifest(self._select(ref))

    def _entries(self) -> list[dict[str, Any]]:
        where = f"{self.name}: manifest.json"
        entries = self.document("manifest.json")
        expect(entries, list, where, "manifest.json", optional=False)
        for entry in entries:
            expect(entry, dict, where, "each entry", optional=False)
            expect(entry.get("Config"), str, where, "'Config'", optional=False)
            for key in ("Layers", "RepoTags"):
                expect(entry.get(key), list, where, f"'{key}'")
                for item in entry.get(key) or []:
                    expect(item, str, where, f"each item of '{key}'", optional=False)
        return list(entries)

    def _select(self, ref: str) -> dict[str, Any]:
        entries = self._entries()
        if ref.startswith("@") and ref[1:].isdigit():
            index = int(ref[1:])
            if index >= len(entries):
                raise LayoutError(f"{self.name} holds {len(entries)} images, no {ref}")
            return entries[index]
        if ref:
            wanted = {ref, f"docker.io/library/{ref}", f"docker.io/{ref}"}
            for entry in entries:
                if wanted & set(entry.get("RepoTags") or []):
                    return entry
            raise LayoutError(f"{self.name} has no image tagged '{ref}'")
        if len(entries) != 1:
            raise LayoutError(
                f"{self.name} holds {len(entries)} images; name one as FILE:NAME:TAG or FILE:@N"
            )
        return entries[0]

    def _blob(self, member: str) -> Descriptor:
        hasher = hashlib.sha256()
        size = 0
        head = b""
        with self.member(member) as stream:
            while chunk := _read(stream, self.name, member):
                head = head or chunk[:8]
                hasher.update(chunk)
                size += len(chunk)
        digest = Digest("sha256", hasher.hexdigest())
        self._members[digest] = member
        return Descriptor(_layer_media_type(head), digest, size)

    def _made_manifest(self, entry: dict[str, Any]) -> Descriptor:
        try:
            config_member = str(entry["Config"])
            layer_members = [str(m) for m in entry.get("Layers") or []]
        except (KeyError, TypeError) as exc:
            raise ImageError(f"{self.name}: manifest.json entry is malformed: {exc}") from None
        with self.member(config_member) as stream:
            config_bytes = _read(stream, self.name, config_member, MAX_DOCUMENT + 1)
        config = Descriptor(OCI_CONFIG, Digest.of(config_bytes), len(config_bytes))
        named = Path(config_member).name.removesuffix(".json")
        if len(named) == 64 and named != config.digest.encoded:
            raise ImageError(
                f"{self.name}: config {config_member} does not match its digest; the archive "
                "is corrupt"
            )
        self._documents[config.digest] = config_bytes
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.to_json(),
            "layers": [self._blob(m).to_json() for m in layer_members],
        }
        data = canonical_json(manifest)
        descriptor = Descriptor(OCI_MANIFEST, Digest.of(data), len(data))
        self._documents[descriptor.digest] = data
        return descriptor
