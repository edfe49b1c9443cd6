"""Reading images that already exist: stores of blobs and the images in them.

A ``Store`` hands out verified bytes by descriptor; ``resolve_image`` walks
index → manifest → config for one platform. The OCI layout store lives here;
archive and registry stores implement the same protocol.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

from builder.errors import ImageError, LayoutError
from builder.model import (
    ANNOTATION_REF_NAME,
    INDEX_TYPES,
    MANIFEST_TYPES,
    Descriptor,
    Platform,
    VerifiedReader,
)

MAX_DOCUMENT = 4 << 20


class Store(Protocol):
    """Content-addressed read access; ``name`` says where, for error messages."""

    name: str

    def open(self, descriptor: Descriptor) -> BinaryIO: ...


def read_document(store: Store, descriptor: Descriptor) -> tuple[bytes, dict[str, Any]]:
    """A JSON manifest, index or config, verified against its descriptor."""
    if descriptor.size > MAX_DOCUMENT:
        raise ImageError(f"{store.name}: {descriptor.digest} is {descriptor.size} bytes, too large")
    with store.open(descriptor) as stream:
        reader = VerifiedReader(stream, descriptor, store.name)
        data = reader.read(descriptor.size + 1)
        reader.finish()
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise ImageError(f"{store.name}: {descriptor.digest} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ImageError(f"{store.name}: {descriptor.digest} is not a JSON object")
    return data, document


@dataclass(frozen=True, slots=True)
class SourceImage:
    """One platform's image as read from a store, with the exact bytes it was made of."""

    store_name: str
    manifest: Descriptor
    manifest_bytes: bytes
    config: Descriptor
    config_bytes: bytes
    layers: tuple[Descriptor, ...]

    @property
    def config_json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.config_bytes)
        return parsed

    @property
    def platform(self) -> Platform:
        return Platform.from_json(self.config_json)


def platforms_of(store: Store, index: Descriptor) -> list[Descriptor]:
    """The platform manifests of an index, attestation (unknown/unknown) entries skipped."""
    _, document = read_document(store, index)
    found = []
    for item in document.get("manifests") or []:
        descriptor = Descriptor.from_json(item)
        platform = descriptor.platform
        if platform is not None and platform.os == "unknown" and platform.architecture == "unknown":
            continue
        found.append(descriptor)
    return found


def resolve_image(store: Store, root: Descriptor, platform: Platform | None) -> SourceImage:
    """Follow an index to ``platform``'s manifest (any single one if None) and read it."""
    descriptor = root
    if root.media_type in INDEX_TYPES:
        candidates = platforms_of(store, root)
        matching = [d for d in candidates if platform is None or d.platform == platform]
        if platform is None and len(candidates) > 1:
            offered = ", ".join(str(d.platform) for d in candidates)
            raise ImageError(f"{store.name} holds several platforms ({offered}); pick one")
        if not matching:
            offered = ", ".join(str(d.platform) for d in candidates) or "none"
            raise ImageError(f"{store.name} has no image for {platform}; it offers: {offered}")
        descriptor = matching[0]
    if descriptor.media_type not in MANIFEST_TYPES:
        raise ImageError(
            f"{store.name}: {descriptor.digest} has unsupported type {descriptor.media_type}"
        )
    data, manifest = read_document(store, descriptor)
    try:
        config = Descriptor.from_json(manifest["config"])
        layers = tuple(Descriptor.from_json(item) for item in manifest.get("layers") or [])
    except (KeyError, TypeError) as exc:
        raise ImageError(
            f"{store.name}: manifest {descriptor.digest} is malformed: {exc}"
        ) from None
    config_bytes, _ = read_document(store, config)
    image = SourceImage(store.name, descriptor, data, config, config_bytes, layers)
    if platform is not None and image.platform != platform:
        raise ImageError(f"{store.name} is a {image.platform} image, not {platform}")
    return image


def pick_entry(
    entries: list[Descriptor], tag: str, where: str, names: Callable[[Descriptor], set[str]]
) -> Descriptor:
    """The entry ``tag`` names (by ``names(entry)``); with no tag, the only image.

    Referrers listed beside the images (entries with an ``artifactType``) do
    not count: a layout holding one image and its SBOM still needs no tag.
    """
    if tag:
        named = [e for e in entries if tag in names(e)]
        if not named:
            offered = sorted({n for e in entries for n in names(e)})
            raise LayoutError(
                f"{where} has no image '{tag}'; it has: {', '.join(offered) or 'none'}"
            )
        return named[-1]
    images = [e for e in entries if not e.artifact_type]  # referrers are not images
    if len(images) != 1:
        raise LayoutError(f"{where} holds {len(images)} images; name one after a ':'")
    return images[0]


def ref_names(entry: Descriptor) -> set[str]:
    return {entry.annotations.get(ANNOTATION_REF_NAME, "")} - {""}


@dataclass(frozen=True, slots=True)
class StoreBlob:
    """A blob read from a store when an output copies it; verified as it is copied."""

    descriptor: Descriptor
    store: Store

    @property
    def verified_file(self) -> None:
        return None

    def open(self) -> BinaryIO:
        return self.store.open(self.descriptor)
