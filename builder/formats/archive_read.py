"""Reading image archives as stores: oci-archive (a tarred OCI layout) and docker-archive.

Both are read in place (``tarfile`` seeks to a member; nothing is unpacked).
An archive with ``index.json`` (OCI archives, Docker ≥25 saves, bale's own)
is read as an OCI layout, so its manifests are served byte for byte. An older
docker-archive has only ``manifest.json``: a manifest is made from it, the
config named by its digest, each layer blob by the digest of its bytes
(hashed once while opening); the config's diff_ids are checked when the
layers are read.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any, BinaryIO, cast

from builder.errors import ImageError, LayoutError
from builder.image.store import pick_entry, ref_names
from builder.model import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    OCI_MANIFEST,
    Descriptor,
    Digest,
    canonical_json,
)

_CHUNK = 1 << 20
IMAGE_NAME = "io.containerd.image.name"


class _TarBlobs:
    """Blobs of a tar file by digest: ``blobs/<alg>/<hex>`` members, plus made-up ones."""

    def __init__(self, path: Path, transport: str) -> None:
        self.path = path
        self.name = f"{transport}:{path}"
        try:
            self._tar = tarfile.open(path, "r:")  # noqa: SIM115 (closed by close())
        except (OSError, tarfile.TarError) as exc:
            raise LayoutError(f"{self.name}: cannot read the archive: {exc}") from None
        names = set(self._tar.getnames())
        self._prefix = "./" if "./index.json" in names or "./manifest.json" in names else ""
        self.has_index = self._prefix + "index.json" in names
        self._members: dict[Digest, str] = {}
        self._documents: dict[Digest, bytes] = {}

    def close(self) -> None:
        self._tar.close()

    def member(self, member: str) -> BinaryIO:
        try:
            stream = self._tar.extractfile(self._prefix + member.removeprefix("./"))
        except KeyError:
            stream = None
        if stream is None:
            raise LayoutError(f"{self.name}: the archive has no file '{member}'")
        return cast(BinaryIO, stream)

    def open(self, descriptor: Descriptor) -> BinaryIO:
        digest = descriptor.digest
        if digest in self._documents:
            return io.BytesIO(self._documents[digest])
        default = f"blobs/{digest.algorithm}/{digest.encoded}"
        return self.member(self._members.get(digest, default))

    def index_entries(self) -> list[Descriptor]:
        with self.member("index.json") as stream:
            data = stream.read()
        try:
            return [Descriptor.from_json(m) for m in json.loads(data).get("manifests") or []]
        except (ValueError, AttributeError, ImageError) as exc:
            raise LayoutError(f"{self.name}: index.json is not valid: {exc}") from None


def _all_names(entry: Descriptor) -> set[str]:
    """A tag, a full name and its short forms (docker.io/library/app:1 → app:1)."""
    names = ref_names(entry)
    full = entry.annotations.get(IMAGE_NAME, "")
    if full:
        names |= {full, full.removeprefix("docker.io/"), full.removeprefix("docker.io/library/")}
    return names


class OciArchiveStore(_TarBlobs):
    """``oci-archive:FILE``: an OCI layout packed in a tar."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, "oci-archive")
        if not self.has_index:
            raise LayoutError(f"{self.name} is not an OCI archive (no index.json)")

    def lookup(self, tag: str) -> Descriptor:
        return pick_entry(self.index_entries(), tag, self.name, ref_names)


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
        with self.member("manifest.json") as stream:
            try:
                return list(json.loads(stream.read()))
            except (ValueError, TypeError) as exc:
                raise LayoutError(f"{self.name}: manifest.json is not valid: {exc}") from None

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
            while chunk := stream.read(_CHUNK):
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
            config_bytes = stream.read()
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
