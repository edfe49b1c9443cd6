"""Values shared by every stage: digests, descriptors, platforms, media types.

Also the one canonical JSON encoder: a document is serialised once, and
those exact bytes are hashed, stored and pushed.
"""

from __future__ import annotations

import hashlib
import json
import platform as _host
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from builder.errors import DigestMismatch, ImageError, SpecError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = OCI_LAYER + "+gzip"
OCI_LAYER_ZSTD = OCI_LAYER + "+zstd"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"

OCI_NONDIST_LAYER = "application/vnd.oci.image.layer.nondistributable.v1.tar"
DOCKER_FOREIGN_LAYER_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

# Whiteouts (OCI image spec, layer.md): a deleted name, and a directory made opaque.
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"

MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CREATED = "org.opencontainers.image.created"
ANNOTATION_BASE_NAME = "org.opencontainers.image.base.name"
ANNOTATION_BASE_DIGEST = "org.opencontainers.image.base.digest"
# The name containerd and Docker give an image they import from an OCI layout.
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"

_ALGORITHM = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*$")
_ENCODED = re.compile(r"^[a-zA-Z0-9=_-]+$")
_HEX_LENGTH = {"sha256": 64, "sha512": 128}


@dataclass(frozen=True, slots=True, order=True)
class Digest:
    """``algorithm:encoded``, validated on construction."""

    algorithm: str
    encoded: str

    def __post_init__(self) -> None:
        if not _ALGORITHM.match(self.algorithm) or not _ENCODED.match(self.encoded):
            raise ImageError(f"invalid digest '{self}': expected 'sha256:<64 hex digits>'")
        want = _HEX_LENGTH.get(self.algorithm)
        if want is not None and not re.fullmatch(f"[a-f0-9]{{{want}}}", self.encoded):
            raise ImageError(
                f"invalid digest '{self}': {self.algorithm} needs {want} lowercase hex digits"
            )

    @classmethod
    def parse(cls, text: str) -> Digest:
        algorithm, sep, encoded = text.partition(":")
        if not sep:
            raise ImageError(f"invalid digest '{text}': expected 'sha256:<64 hex digits>'")
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, data: bytes) -> Digest:
        return cls("sha256", hashlib.sha256(data).hexdigest())

    def new_hasher(self) -> Any:
        """A fresh hashlib object of this digest's algorithm."""
        if self.algorithm not in _HEX_LENGTH:
            raise ImageError(f"unsupported digest algorithm '{self.algorithm}' in {self}")
        return hashlib.new(self.algorithm)

    @property
    def blob_path(self) -> str:
        """Where an OCI layout (or an archive of one) keeps these bytes."""
        return f"blobs/{self.algorithm}/{self.encoded}"

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.encoded}"


CODECS = ("gzip", "zstd", "none")
_LEVELS = {"gzip": (1, 12, 2), "zstd": (1, 19, 3), "none": (0, 0, 0)}
_CHUNK = {"gzip": 1 << 20, "zstd": 4 << 20, "none": 1 << 20}
# The one map between layer media types and their compression, read and write.
LAYER_CODECS = {
    OCI_LAYER: "none",
    OCI_LAYER_GZIP: "gzip",
    OCI_LAYER_ZSTD: "zstd",
    DOCKER_LAYER: "none",
    DOCKER_LAYER_GZIP: "gzip",
    OCI_NONDIST_LAYER: "none",
    OCI_NONDIST_LAYER + "+gzip": "gzip",
    OCI_NONDIST_LAYER + "+zstd": "zstd",
    DOCKER_FOREIGN_LAYER_GZIP: "gzip",
}
_MEDIA = {"gzip": OCI_LAYER_GZIP, "zstd": OCI_LAYER_ZSTD, "none": OCI_LAYER}


def layer_codec(media_type: str) -> str:
    """gzip, zstd or none for a layer media type; an unknown type is an error."""
    codec = LAYER_CODECS.get(media_type)
    if codec is None:
        raise ImageError(
            f"unsupported layer media type '{media_type}': bale reads OCI and Docker tar layers "
            "(plain, gzip or zstd)"
        )
    return codec


@dataclass(frozen=True, slots=True)
class Codec:
    """A compression choice; part of every layer's cache key."""

    name: str = "gzip"
    level: int = 2

    @classmethod
    def of(cls, name: str, level: int | None = None) -> Codec:
        if name not in CODECS:
            raise SpecError(f"unknown compression '{name}': choose one of {', '.join(CODECS)}")
        low, high, default = _LEVELS[name]
        level = default if level is None else level
        if name != "none" and not low <= level <= high:
            raise SpecError(
                f"compression_level {level} is out of range for {name}: use {low} to {high}"
            )
        return cls(name, level if name != "none" else 0)

    @property
    def media_type(self) -> str:
        return _MEDIA[self.name]

    @property
    def chunk_size(self) -> int:
        return _CHUNK[self.name]


_VARIANT_DEFAULTS = {"arm": "v7"}
_VARIANT_DROPPED = {("arm64", "v8"), ("amd64", "v1")}
_ARCH_ALIASES = {
    "x86_64": "amd64",
    "x86-64": "amd64",
    "aarch64": "arm64",
    "i386": "386",
}
_PLATFORM_PART = re.compile(r"^[a-z0-9._-]+$")


@dataclass(frozen=True, slots=True)
class Platform:
    """An OS/architecture pair, normalised the way containerd does."""

    os: str
    architecture: str
    variant: str = ""
    os_version: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.strip().lower().split("/")
        if len(parts) not in (2, 3) or not all(_PLATFORM_PART.match(p) for p in parts):
            raise ImageError(
                f"invalid platform '{text}': expected OS/ARCH[/VARIANT], e.g. linux/amd64"
            )
        arch = _ARCH_ALIASES.get(parts[1], parts[1])
        variant = parts[2] if len(parts) == 3 else ""
        return cls.of(parts[0], arch, variant)

    @classmethod
    def of(cls, os: str, architecture: str, variant: str = "", os_version: str = "") -> Platform:
        variant = variant or _VARIANT_DEFAULTS.get(architecture, "")
        if (architecture, variant) in _VARIANT_DROPPED:
            variant = ""
        return cls(os, architecture, variant, os_version)

    @classmethod
    def host(cls) -> Platform:
        machine = _host.machine().lower()
        table = {
            "armv7l": ("arm", "v7"),
            "armv6l": ("arm", "v6"),
            "ppc64le": ("ppc64le", ""),
        }
        arch, variant = table.get(machine, (_ARCH_ALIASES.get(machine, machine), ""))
        return cls.of("linux", arch, variant)

    def to_json(self) -> dict[str, str]:
        out = {"architecture": self.architecture, "os": self.os}
        if self.os_version:
            out["os.version"] = self.os_version
        if self.variant:
            out["variant"] = self.variant
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Platform:
        return cls.of(
            str(obj.get("os", "")),
            str(obj.get("architecture", "")),
            str(obj.get("variant", "") or ""),
            str(obj.get("os.version", "") or ""),
        )

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True, slots=True)
class Descriptor:
    """A content descriptor: what a manifest or index says about a blob."""

    media_type: str
    digest: Digest
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    platform: Platform | None = None
    artifact_type: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": self.size,
        }
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Descriptor:
        try:
            platform = obj.get("platform")
            return cls(
                media_type=str(obj["mediaType"]),
                digest=Digest.parse(str(obj["digest"])),
                size=int(obj["size"]),
                annotations=dict(obj.get("annotations") or {}),
                platform=Platform.from_json(platform) if platform else None,
                artifact_type=str(obj.get("artifactType") or ""),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ImageError(f"invalid descriptor {json.dumps(obj)[:200]}: {exc}") from exc


def canonical_json(obj: Any) -> bytes:
    """Stable bytes for a JSON document: sorted keys, no spaces, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class Blob(Protocol):
    """Bytes with a descriptor, re-readable from the start on every ``open``.

    ``verified_file`` is a file holding exactly the descriptor's bytes, hashed by
    bale itself in this run (a layer it built, a cache entry it checked); a
    writer may copy it without reading it back. None means: verify while copying.
    """

    @property
    def descriptor(self) -> Descriptor: ...

    @property
    def verified_file(self) -> Path | None: ...

    def open(self) -> BinaryIO: ...


class BlobCheck:
    """Hashes and counts a blob's bytes as they pass, against its descriptor.

    The one place a blob's bytes are checked, whether they come from a layout,
    an archive, a registry or a layer reader. ``update`` refuses bytes past the
    descriptor's size, so a reader never consumes more than the size promised.
    """

    def __init__(self, descriptor: Descriptor) -> None:
        self.descriptor = descriptor
        self.hasher = descriptor.digest.new_hasher()
        self.size = 0

    def update(self, data: bytes) -> bool:
        """Add ``data``; False (and the bytes not counted) once past the expected size."""
        if self.size + len(data) > self.descriptor.size:
            self.size = self.descriptor.size + 1
            return False
        self.size += len(data)
        self.hasher.update(data)
        return True

    @property
    def ok(self) -> bool:
        return (
            self.size == self.descriptor.size
            and self.hasher.hexdigest() == self.descriptor.digest.encoded
        )

    def problem(self) -> str:
        """What was wrong, in words ('' when the bytes match)."""
        if self.ok:
            return ""
        want = self.descriptor
        got = f"{self.size} bytes" if self.size <= want.size else f"more than {want.size} bytes"
        return f"{want.digest}: got {got}, expected {want.size} bytes with that digest"


class VerifiedReader:
    """A read-through stream that checks a blob; ``finish`` reads the rest and raises
    ``DigestMismatch`` (with ``where`` in the message) if the bytes do not match."""

    def __init__(self, stream: BinaryIO, descriptor: Descriptor, where: str) -> None:
        self.stream = stream
        self.check = BlobCheck(descriptor)
        self.where = where

    def read(self, size: int = -1) -> bytes:
        left = self.check.descriptor.size + 1 - self.check.size
        if left <= 0:
            return b""
        data = self.stream.read(left if size < 0 else min(size, left))
        self.check.update(data)
        return data

    def finish(self) -> None:
        while self.read(1 << 20):
            pass
        if not self.check.ok:
            raise DigestMismatch(f"{self.where}: {self.check.problem()}; the image is corrupt")
