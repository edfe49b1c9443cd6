"""Reading images that already exist: stores of blobs and the images in them.

A ``Store`` hands out verified bytes by descriptor; ``resolve_image`` walks
index → manifest → config for one platform. The OCI layout store lives here;
archive and registry stores implement the same protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

from builder.errors import ImageError, LayoutError
from builder.image.documents import (
    MAX_DOCUMENT,
    check_config,
    check_index,
    check_manifest,
    parse_json,
)
from builder.layer.lower import read_layer
from builder.model import (
    ANNOTATION_REF_NAME,
    DOCKER_CONFIG,
    INDEX_TYPES,
    MANIFEST_TYPES,
    OCI_CONFIG,
    Descriptor,
    Digest,
    Platform,
    VerifiedReader,
)

CONFIG_TYPES = frozenset({OCI_CONFIG, DOCKER_CONFIG})

__all__ = ["MAX_DOCUMENT", "SourceImage", "Store", "read_document", "resolve_image"]


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
    document = parse_json(data, f"{store.name}: {descriptor.digest}")
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
        return check_config(parse_json(self.config_bytes, self.store_name), self.store_name)

    @property
    def platform(self) -> Platform:
        return Platform.from_json(self.config_json)


def platforms_of(store: Store, index: Descriptor) -> list[Descriptor]:
    """The platform manifests of an index, attestation (unknown/unknown) entries skipped."""
    _, document = read_document(store, index)
    check_index(document, f"{store.name}: index {index.digest}")
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
    where = f"{store.name}: manifest {descriptor.digest}"
    check_manifest(manifest, where)
    config = Descriptor.from_json(manifest["config"])
    layers = tuple(Descriptor.from_json(item) for item in manifest.get("layers") or [])
    config_bytes, _ = read_document(store, config)
    image = SourceImage(store.name, descriptor, data, config, config_bytes, layers)
    if config.media_type not in CONFIG_TYPES:
        raise ImageError(
            f"{where}: its config has media type {config.media_type}, not an image config; "
            "it is not a container image"
        )
    diff_ids(image)  # checks the config's shape, and one diff_id per layer
    if platform is not None and image.platform != platform:
        raise ImageError(f"{store.name} is a {image.platform} image, not {platform}")
    return image


def diff_ids(image: SourceImage) -> tuple[Digest, ...]:
    """The config's diff_ids, one per layer of the manifest (else ImageError)."""
    rootfs = image.config_json["rootfs"]
    found = tuple(Digest.parse(d) for d in rootfs.get("diff_ids") or [])
    if len(found) != len(image.layers):
        raise ImageError(
            f"{image.store_name}: the config lists {len(found)} diff_ids for "
            f"{len(image.layers)} layers; the image is corrupt"
        )
    return found


def check_layers(store: Store, image: SourceImage) -> None:
    """Read every layer of ``image``: digest, size, media type, tar and diff_id checked."""
    for layer, diff_id in zip(image.layers, diff_ids(image), strict=True):
        read_layer(store.open(layer), layer, diff_id, store.name)


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
