"""A minimal Store over an ``oci-archive`` or ``docker-archive`` tar file, for inspect/diff.

Blobs are read in place through ``tarfile`` members (random access, nothing
extracted). An archive with ``index.json`` (OCI archives, Docker ≥25 saves,
bale's own) is read as an OCI layout. A legacy docker-archive with only
``manifest.json`` gets a Docker manifest synthesised from it, kept in memory
under its own digest, so every consumer sees the same content-addressed store.
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
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    Descriptor,
    Digest,
    canonical_json,
)

_IMAGE_NAME = "io.containerd.image.name"


class TarStore:
    """Blobs of an archive file, by digest."""

    def __init__(self, path: Path, transport: str) -> None:
        self.name = f"{transport}:{path}"
        try:
            self._tar = tarfile.open(path, mode="r:")  # noqa: SIM115 (closed by close())
        except (OSError, tarfile.TarError) as exc:
            raise LayoutError(f"{self.name}: cannot read the archive: {exc}") from None
        self._members = {m.name.removeprefix("./"): m for m in self._tar.getmembers() if m.isfile()}
        self._paths: dict[Digest, str] = {}
        self._memory: dict[Digest, bytes] = {}

    def close(self) -> None:
        self._tar.close()

    def member(self, name: str) -> bytes | None:
        info = self._members.get(name)
        if info is None:
            return None
        stream = self._tar.extractfile(info)
        return stream.read() if stream is not None else None

    def open(self, descriptor: Descriptor) -> BinaryIO:
        digest = descriptor.digest
        if digest in self._memory:
            return io.BytesIO(self._memory[digest])
        name = self._paths.get(digest, f"blobs/{digest.algorithm}/{digest.encoded}")
        info = self._members.get(name)
        stream = self._tar.extractfile(info) if info is not None else None
        if stream is None:
            raise LayoutError(f"{self.name}: blob {digest} is missing from the archive")
        return cast(BinaryIO, stream)

    def lookup(self, tag: str) -> Descriptor:
        """The image named ``tag`` (a ref.name, full name or RepoTag); with none, the only one."""
        index = self.member("index.json")
        entries = _entries(index, self.name) if index is not None else self._legacy()
        if tag:
            named = [e for e in entries if tag in _names(e)]
            if not named:
                offered = sorted({n for e in entries for n in _names(e)})
                raise LayoutError(
                    f"{self.name} has no image '{tag}'; it has: {', '.join(offered) or 'none'}"
                )
            return named[0]
        if len(entries) != 1:
            raise LayoutError(f"{self.name} holds {len(entries)} images; name one after a ':'")
        return entries[0]

    def _legacy(self) -> list[Descriptor]:
        """Docker manifests synthesised from a pre-25 ``manifest.json``."""
        data = self.member("manifest.json")
        if data is None:
            raise LayoutError(f"{self.name} has neither index.json nor manifest.json")
        try:
            items = json.loads(data)
            return [self._synthesise(item) for item in items]
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise LayoutError(f"{self.name}: manifest.json is not valid: {exc}") from None

    def _synthesise(self, item: dict[str, Any]) -> Descriptor:
        config = self._register(str(item["Config"]), DOCKER_CONFIG)
        layers = [self._register(str(p), DOCKER_LAYER) for p in item.get("Layers") or []]
        document = {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": config.to_json(),
            "layers": [d.to_json() for d in layers],
        }
        data = canonical_json(document)
        digest = Digest.of(data)
        self._memory[digest] = data
        tags = {t: "" for t in item.get("RepoTags") or []}
        return Descriptor(DOCKER_MANIFEST, digest, len(data), {_IMAGE_NAME: ",".join(tags)})

    def _register(self, name: str, media_type: str) -> Descriptor:
        info = self._members.get(name.removeprefix("./"))
        stream = self._tar.extractfile(info) if info is not None else None
        if info is None or stream is None:
            raise LayoutError(f"{self.name}: manifest.json names {name}, which is missing")
        hasher = hashlib.sha256()
        head = stream.read(2)
        hasher.update(head)
        while chunk := stream.read(1 << 20):
            hasher.update(chunk)
        if media_type == DOCKER_LAYER and head == b"\x1f\x8b":
            media_type = DOCKER_LAYER_GZIP
        digest = Digest("sha256", hasher.hexdigest())
        self._paths[digest] = info.name
        return Descriptor(media_type, digest, info.size)


def _entries(data: bytes, where: str) -> list[Descriptor]:
    try:
        return [Descriptor.from_json(m) for m in json.loads(data).get("manifests") or []]
    except (ValueError, AttributeError, ImageError) as exc:
        raise LayoutError(f"{where}: index.json is not valid: {exc}") from None


def _names(entry: Descriptor) -> set[str]:
    """Every name an entry answers to: its tag, its full name, each RepoTag."""
    names = {entry.annotations.get(ANNOTATION_REF_NAME, "")}
    for full in entry.annotations.get(_IMAGE_NAME, "").split(","):
        names.add(full)
        names.add(full.rsplit("/", 1)[-1])
        names.add(full.rpartition(":")[2] if "/" not in full.rpartition(":")[2] else "")
    return names - {""}
