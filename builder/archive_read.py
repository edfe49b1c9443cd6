"""Reading image archives as stores: oci-archive (a tarred OCI layout) and docker-archive.

Both are read in place (``tarfile`` seeks to a member; nothing is unpacked).
A docker-archive has no manifest, so one is made from its ``manifest.json``:
the config is named by its digest, each layer blob by the digest of its bytes
(hashed once while opening), and the diff_ids of the config are checked when
the layers are read.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any, BinaryIO, cast

from builder.errors import ImageError, LayoutError
from builder.model import (
    ANNOTATION_REF_NAME,
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


def _open_tar(path: Path, name: str) -> tarfile.TarFile:
    try:
        return tarfile.open(path, "r:")
    except (OSError, tarfile.TarError) as exc:
        raise LayoutError(f"{name}: cannot read the archive: {exc}") from None


def _member_bytes(tar: tarfile.TarFile, member: str, name: str) -> BinaryIO:
    try:
        stream = tar.extractfile(member)
    except KeyError:
        stream = None
    if stream is None:
        raise LayoutError(f"{name}: the archive has no file '{member}'")
    return cast(BinaryIO, stream)


class OciArchiveStore:
    """``oci-archive:FILE``: an OCI layout packed in a tar."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"oci-archive:{path}"
        self._tar = _open_tar(path, self.name)
        names = set(self._tar.getnames())
        if not {"oci-layout", "index.json"} <= {n.removeprefix("./") for n in names}:
            raise LayoutError(f"{self.name} is not an OCI archive (no oci-layout and index.json)")
        self._prefix = "./" if "./index.json" in names else ""

    def open(self, descriptor: Descriptor) -> BinaryIO:
        digest = descriptor.digest
        member = f"{self._prefix}blobs/{digest.algorithm}/{digest.encoded}"
        return _member_bytes(self._tar, member, self.name)

    def lookup(self, tag: str) -> Descriptor:
        """The index.json entry named ``tag``; with no tag, the only entry."""
        with _member_bytes(self._tar, self._prefix + "index.json", self.name) as stream:
            data = stream.read()
        try:
            entries = [Descriptor.from_json(m) for m in json.loads(data).get("manifests") or []]
        except (ValueError, AttributeError) as exc:
            raise LayoutError(f"{self.name}: index.json is not valid: {exc}") from None
        if tag:
            named = [e for e in entries if e.annotations.get(ANNOTATION_REF_NAME) == tag]
            if not named:
                raise LayoutError(f"{self.name} has no tag '{tag}'")
            return named[-1]
        if len(entries) != 1:
            raise LayoutError(f"{self.name} holds {len(entries)} images; name one as FILE:TAG")
        return entries[0]


def _layer_media_type(head: bytes) -> str:
    if head.startswith(b"\x1f\x8b"):
        return OCI_LAYER_GZIP
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return OCI_LAYER_ZSTD
    return OCI_LAYER


class DockerArchiveStore:
    """``docker-archive:FILE``: what ``docker save`` writes; serves a made-up OCI manifest."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"docker-archive:{path}"
        self._tar = _open_tar(path, self.name)
        self._members: dict[Digest, str] = {}
        self._documents: dict[Digest, bytes] = {}
        with _member_bytes(self._tar, "manifest.json", self.name) as stream:
            try:
                self._entries: list[dict[str, Any]] = list(json.loads(stream.read()))
            except (ValueError, TypeError) as exc:
                raise LayoutError(f"{self.name}: manifest.json is not valid: {exc}") from None

    def open(self, descriptor: Descriptor) -> BinaryIO:
        if descriptor.digest in self._documents:
            return io.BytesIO(self._documents[descriptor.digest])
        member = self._members.get(descriptor.digest)
        if member is None:
            raise LayoutError(f"{self.name}: no blob {descriptor.digest}")
        return _member_bytes(self._tar, member, self.name)

    def _select(self, ref: str) -> dict[str, Any]:
        if ref.startswith("@") and ref[1:].isdigit():
            index = int(ref[1:])
            if index >= len(self._entries):
                raise LayoutError(f"{self.name} holds {len(self._entries)} images, no {ref}")
            return self._entries[index]
        if ref:
            wanted = {ref, f"docker.io/library/{ref}", f"docker.io/{ref}"}
            for entry in self._entries:
                if wanted & set(entry.get("RepoTags") or []):
                    return entry
            raise LayoutError(f"{self.name} has no image tagged '{ref}'")
        if len(self._entries) != 1:
            raise LayoutError(
                f"{self.name} holds {len(self._entries)} images; "
                "name one as FILE:NAME:TAG or FILE:@N"
            )
        return self._entries[0]

    def _blob(self, member: str) -> Descriptor:
        hasher = hashlib.sha256()
        size = 0
        head = b""
        with _member_bytes(self._tar, member, self.name) as stream:
            while chunk := stream.read(_CHUNK):
                head = head or chunk[:8]
                hasher.update(chunk)
                size += len(chunk)
        digest = Digest("sha256", hasher.hexdigest())
        self._members[digest] = member
        return Descriptor(_layer_media_type(head), digest, size)

    def lookup(self, ref: str) -> Descriptor:
        """The manifest of the image ``ref`` names (``name:tag``, ``@N`` or the only one)."""
        entry = self._select(ref)
        try:
            config_member = str(entry["Config"])
            layer_members = [str(m) for m in entry.get("Layers") or []]
        except (KeyError, TypeError) as exc:
            raise ImageError(f"{self.name}: manifest.json entry is malformed: {exc}") from None
        with _member_bytes(self._tar, config_member, self.name) as stream:
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
