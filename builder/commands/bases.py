"""The base image edge: a Location → a store and the verified image it holds.

Every transport gives a ``Store`` and a root descriptor; ``resolve_image``
does the rest; a registry base is one more branch of ``open_store`` (a
``RegistryStore``, whose layers download lazily through the cache). Base layers
are reused as they are: the output gets their blobs byte for byte, with the
descriptors of the base manifest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from builder.errors import ImageError
from builder.formats.locate import open_local, open_registry
from builder.image.store import SourceImage, Store, StoreBlob, platforms_of, resolve_image
from builder.model import (
    DOCKER_LAYER,
    DOCKER_LAYER_GZIP,
    INDEX_TYPES,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    Descriptor,
    Digest,
    Platform,
)
from builder.registry.options import Clients
from builder.spec.locations import Location

# Docker layer types name the same formats; an OCI manifest carries the OCI names.
_OCI_LAYER_TYPE = {DOCKER_LAYER_GZIP: OCI_LAYER_GZIP, DOCKER_LAYER: OCI_LAYER}


@dataclass(frozen=True, slots=True)
class BaseLayer(StoreBlob):
    """A layer of the base: its blob is copied from the store unchanged."""

    diff_id: Digest
    created_by: str = ""


@dataclass(frozen=True, slots=True)
class BaseImage:
    """A resolved base: where it came from, its config document and its layers."""

    name: str
    source: SourceImage
    config: dict[str, Any]
    layers: tuple[BaseLayer, ...]

    @property
    def digest(self) -> Digest:
        return self.source.manifest.digest

    @property
    def platform(self) -> Platform:
        return self.source.platform


def open_store(ref: Location, clients: Clients | None = None) -> tuple[Store, Descriptor]:
    """The store of a base location and the descriptor its tag (or digest) names."""
    if ref.transport == "docker":
        return open_registry(ref, clients or Clients())
    if not ref.path.exists():
        raise ImageError(f"base {ref}: {ref.path} does not exist")
    return open_local(ref)


def _pick_platform(store: Store, root: Descriptor, wanted: Platform | None) -> Platform | None:
    """With no platform asked for, a multi-platform base gives the host's."""
    if wanted is not None or root.media_type not in INDEX_TYPES:
        return wanted
    return Platform.host() if len(platforms_of(store, root)) > 1 else None


def base_platforms(ref: Location, clients: Clients | None = None) -> tuple[Platform, ...]:
    """Every platform the base offers, in its index's order (attestations skipped).

    A single-platform base (a plain manifest) offers the platform of its config.
    """
    store, root = open_store(ref, clients)
    try:
        if root.media_type not in INDEX_TYPES:
            return (resolve_image(store, root, None).platform,)
        found = []
        for descriptor in platforms_of(store, root):
            if descriptor.platform is None:
                raise ImageError(
                    f"base {ref}: index entry {descriptor.digest} names no platform, so "
                    "--platform all cannot tell what it is for; list the platforms instead"
                )
            found.append(descriptor.platform)
        if not found:
            raise ImageError(f"base {ref}: its index holds no platform images")
        return tuple(dict.fromkeys(found))
    finally:
        _close(store)


def _close(store: Store) -> None:
    close = getattr(store, "close", None)
    if close is not None:
        close()


def _resolve(ref: Location, store: Store, root: Descriptor, wanted: Platform | None) -> SourceImage:
    """The base's image for ``wanted``; a platform it lacks is an error listing what it has."""
    if root.media_type in INDEX_TYPES:
        offered = [d.platform for d in platforms_of(store, root)]
        if wanted is not None and wanted not in offered:
            names = ", ".join(str(p) for p in offered) or "none"
            raise ImageError(
                f"base {ref} has no image for {wanted}; it offers: {names}. Build for those "
                "platforms (--platform or [image] platforms), or use --platform all"
            )
        return resolve_image(store, root, wanted)
    source = resolve_image(store, root, None)
    if wanted is not None and source.platform != wanted:
        raise ImageError(
            f"base {ref} is a single-platform image (a manifest, not an index) for "
            f"{source.platform}, so it cannot be the base of a {wanted} image; build for "
            f"{source.platform} only, or use a multi-platform base"
        )
    return source


def load_base(
    ref: Location, platform: Platform | None, clients: Clients | None = None
) -> BaseImage:
    """Read and verify the base's manifest and config for ``platform``."""
    store, root = open_store(ref, clients)
    source = _resolve(ref, store, root, _pick_platform(store, root, platform))
    return BaseImage(str(ref), source, source.config_json, image_layers(source, store))


def image_layers(source: SourceImage, store: Store) -> tuple[BaseLayer, ...]:
    """The layers of an image read from ``store``, with their diff_ids and history steps."""
    config = source.config_json
    diff_ids = _diff_ids(source, config)
    steps = _layer_steps(config, len(diff_ids))
    return tuple(
        BaseLayer(
            Descriptor(
                _OCI_LAYER_TYPE.get(d.media_type, d.media_type), d.digest, d.size, d.annotations
            ),
            store,
            diff_id,
            created_by,
        )
        for d, diff_id, created_by in zip(source.layers, diff_ids, steps, strict=True)
    )


def _layer_steps(config: dict[str, Any], count: int) -> list[str]:
    """``created_by`` of each layer, from the history entries that made one.

    A history that does not match the layers (it is optional) gives empty names.
    """
    history = config.get("history")
    steps = (
        [
            str(item.get("created_by", ""))
            for item in history
            if isinstance(item, dict) and not item.get("empty_layer")
        ]
        if isinstance(history, list)
        else []
    )
    return steps if len(steps) == count else [""] * count


def _diff_ids(source: SourceImage, config: dict[str, Any]) -> Sequence[Digest]:
    rootfs = config.get("rootfs") or {}
    try:
        diff_ids = [Digest.parse(str(d)) for d in rootfs.get("diff_ids") or []]
    except AttributeError:
        diff_ids = []
    if len(diff_ids) != len(source.layers):
        raise ImageError(
            f"{source.store_name}: the config lists {len(diff_ids)} diff_ids for "
            f"{len(source.layers)} layers; the image is corrupt"
        )
    return diff_ids
