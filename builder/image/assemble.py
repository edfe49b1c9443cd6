"""Pure assembly of config, manifest and index documents; the base's container
config merged with ``[config]`` as ``docker build`` does.

Each document is serialised once (canonical JSON); the descriptor is computed
from those bytes, and the same bytes are what sinks store or push.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from builder.errors import ImageError
from builder.model import (
    ANNOTATION_BASE_DIGEST,
    ANNOTATION_BASE_NAME,
    ANNOTATION_CREATED,
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_LAYER_GZIP,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    Descriptor,
    Digest,
    Platform,
    canonical_json,
)
from builder.spec.values import DEFAULT_PATH, ConfigSpec


class ImageLayer(Protocol):
    """A built layer or a reused base layer: what a manifest and config need of it."""

    @property
    def descriptor(self) -> Descriptor: ...

    @property
    def diff_id(self) -> Digest: ...

    @property
    def created_by(self) -> str: ...

    @property
    def verified_file(self) -> Path | None: ...

    def open(self) -> BinaryIO: ...


@dataclass(frozen=True, slots=True)
class BaseParts:
    """What an image inherits from its base: config document, layers, name and digest."""

    config: Mapping[str, Any]
    layers: Sequence[ImageLayer]
    name: str
    digest: Digest


@dataclass(frozen=True, slots=True)
class JsonBlob:
    """A serialised document and the descriptor of exactly those bytes."""

    descriptor: Descriptor
    data: bytes

    @classmethod
    def of(cls, media_type: str, document: Mapping[str, Any]) -> JsonBlob:
        data = canonical_json(document)
        return cls(Descriptor(media_type, Digest.of(data), len(data)), data)

    @property
    def verified_file(self) -> None:
        return None

    def open(self) -> BinaryIO:
        return io.BytesIO(self.data)


@dataclass(frozen=True, slots=True)
class Image:
    """One platform's image: manifest, config and layers, base first."""

    platform: Platform
    manifest: JsonBlob
    config: JsonBlob
    layers: tuple[ImageLayer, ...]


def rfc3339(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class MediaTypes:
    """The media types of one image format (OCI or Docker v2.2)."""

    manifest: str
    index: str
    config: str
    annotations: bool

    def layer(self, descriptor: Descriptor) -> dict[str, Any]:
        """A layer descriptor in this format (the same bytes, maybe another name)."""
        out = descriptor.to_json()
        if self.manifest == DOCKER_MANIFEST:
            known = {
                OCI_LAYER: DOCKER_LAYER,
                OCI_LAYER_GZIP: DOCKER_LAYER_GZIP,
                DOCKER_LAYER: DOCKER_LAYER,
                DOCKER_LAYER_GZIP: DOCKER_LAYER_GZIP,
            }
            if descriptor.media_type not in known:
                raise ImageError(
                    f"layer {descriptor.digest} is {descriptor.media_type}, which Docker's "
                    'media types cannot name; use format = "oci" or a gzip base'
                )
            out["mediaType"] = known[descriptor.media_type]
        return out


FORMATS = {
    "oci": MediaTypes(OCI_MANIFEST, OCI_INDEX, OCI_CONFIG, True),
    "docker": MediaTypes(DOCKER_MANIFEST, DOCKER_LIST, DOCKER_CONFIG, False),
}


def config_blob(
    platform: Platform,
    created: int,
    config: Mapping[str, Any],
    layers: Sequence[ImageLayer],
    media_type: str = OCI_CONFIG,
    base: BaseParts | None = None,
) -> JsonBlob:
    """The config document; a base's diff_ids and history come first, unchanged."""
    base_layers = list(base.layers) if base else []
    history = list(base.config.get("history") or []) if base else []
    document: dict[str, Any] = {
        "architecture": platform.architecture,
        "os": platform.os,
        "created": rfc3339(created),
        "config": dict(config),
        "rootfs": {
            "type": "layers",
            "diff_ids": [str(layer.diff_id) for layer in [*base_layers, *layers]],
        },
        "history": history
        + [{"created": rfc3339(created), "created_by": layer.created_by} for layer in layers],
    }
    if base and base.config.get("os.features"):
        document["os.features"] = base.config["os.features"]
    if platform.variant:
        document["variant"] = platform.variant
    if platform.os_version:
        document["os.version"] = platform.os_version
    return JsonBlob.of(media_type, document)


def manifest_blob(
    config: JsonBlob,
    layers: Sequence[ImageLayer],
    annotations: Mapping[str, str],
    types: MediaTypes = FORMATS["oci"],
) -> JsonBlob:
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": types.manifest,
        "config": config.descriptor.to_json(),
        "layers": [types.layer(layer.descriptor) for layer in layers],
    }
    if annotations and types.annotations:
        document["annotations"] = dict(annotations)
    return JsonBlob.of(types.manifest, document)


def assemble(
    platform: Platform,
    created: int,
    spec: ConfigSpec,
    layers: Sequence[ImageLayer],
    annotations: Mapping[str, str],
    image_format: str = "oci",
    base: BaseParts | None = None,
) -> Image:
    """Config and manifest for one platform from finished layers (after the base's)."""
    types = FORMATS[image_format]
    merged = {ANNOTATION_CREATED: rfc3339(created)}
    container = merge_config(base.config.get("config") if base else None, spec)
    if base is None:
        all_layers = list(layers)
    else:
        merged |= {ANNOTATION_BASE_NAME: base.name, ANNOTATION_BASE_DIGEST: str(base.digest)}
        all_layers = [*base.layers, *layers]
    merged.update(annotations)
    config = config_blob(platform, created, container, layers, types.config, base)
    manifest = manifest_blob(config, all_layers, merged, types)
    return Image(platform, manifest, config, tuple(all_layers))


def index_blob(
    images: Sequence[Image], annotations: Mapping[str, str], image_format: str = "oci"
) -> JsonBlob:
    """An index naming each image's manifest with its platform, in the order given."""
    entries = [(image.manifest.descriptor, image.platform) for image in images]
    return index_of(entries, annotations, image_format)


def index_of(
    entries: Sequence[tuple[Descriptor, Platform]],
    annotations: Mapping[str, str],
    image_format: str = "oci",
) -> JsonBlob:
    """An index of manifests (descriptor and platform each), in the order given.

    ``bale build`` and ``bale index create`` both make their index here, so the
    same manifests give the same index digest either way.
    """
    types = FORMATS[image_format]
    manifests = [
        Descriptor(manifest.media_type, manifest.digest, manifest.size, platform=platform).to_json()
        for manifest, platform in entries
    ]
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": types.index,
        "manifests": manifests,
    }
    if annotations and types.annotations:
        document["annotations"] = dict(annotations)
    return JsonBlob.of(types.index, document)


_DROPPED = frozenset({"OnBuild"})


def _env(base: Any, spec: ConfigSpec) -> list[str]:
    env: dict[str, str] = {}
    for item in base or []:
        key, _, value = str(item).partition("=")
        env[key] = value
    env.update(spec.env)
    env.setdefault("PATH", DEFAULT_PATH)
    return [f"{k}={v}" for k, v in env.items()]


def _union(base: Any, extra: tuple[str, ...]) -> dict[str, Any]:
    merged: dict[str, Any] = dict(base) if isinstance(base, Mapping) else {}
    merged.update((key, {}) for key in extra)
    return merged


def merge_config(base: Mapping[str, Any] | None, spec: ConfigSpec) -> dict[str, Any]:
    """The ``config`` object of an image built on ``base`` (a base config's ``config``)."""
    out = {k: v for k, v in (base or {}).items() if k not in _DROPPED and v is not None}
    out["Env"] = _env(out.get("Env"), spec)
    if spec.entrypoint is not None:
        out["Entrypoint"] = list(spec.entrypoint)
        out.pop("Cmd", None)
    if spec.cmd is not None:
        out["Cmd"] = list(spec.cmd)
    scalars = {"WorkingDir": spec.workdir, "User": spec.user, "StopSignal": spec.stop_signal}
    out.update((key, value) for key, value in scalars.items() if value)
    labels = dict(out.get("Labels") or {})
    labels.update(spec.labels)
    out["Labels"] = labels
    out["ExposedPorts"] = _union(out.get("ExposedPorts"), spec.ports)
    out["Volumes"] = _union(out.get("Volumes"), spec.volumes)
    return {k: v for k, v in out.items() if v not in ({}, [], "")}
