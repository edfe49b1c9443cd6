"""Pure assembly of config, manifest and index documents.

Each document is serialised once (canonical JSON); the descriptor is computed
from those bytes, and the same bytes are what sinks store or push.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from builder.layer import Layer
from builder.model import (
    ANNOTATION_CREATED,
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_LAYER_GZIP,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    Descriptor,
    Digest,
    Platform,
    canonical_json,
)
from builder.spec import DEFAULT_PATH, ConfigSpec


@dataclass(frozen=True, slots=True)
class JsonBlob:
    """A serialised document and the descriptor of exactly those bytes."""

    descriptor: Descriptor
    data: bytes

    @classmethod
    def of(cls, media_type: str, document: Mapping[str, Any]) -> JsonBlob:
        data = canonical_json(document)
        return cls(Descriptor(media_type, Digest.of(data), len(data)), data)

    def open(self) -> BinaryIO:
        return io.BytesIO(self.data)


@dataclass(frozen=True, slots=True)
class Image:
    """One platform's image: manifest, config and layers, base first."""

    platform: Platform
    manifest: JsonBlob
    config: JsonBlob
    layers: tuple[Layer, ...]


def rfc3339(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def container_config(spec: ConfigSpec) -> dict[str, Any]:
    """The ``config`` object of the image config, omitting what is unset."""
    env = dict(spec.env)
    env.setdefault("PATH", DEFAULT_PATH)
    out: dict[str, Any] = {"Env": [f"{k}={v}" for k, v in env.items()]}
    if spec.entrypoint is not None:
        out["Entrypoint"] = list(spec.entrypoint)
    if spec.cmd is not None:
        out["Cmd"] = list(spec.cmd)
    optional = {
        "WorkingDir": spec.workdir,
        "User": spec.user,
        "StopSignal": spec.stop_signal,
        "ExposedPorts": {p: {} for p in spec.ports},
        "Volumes": {v: {} for v in spec.volumes},
        "Labels": dict(spec.labels),
    }
    out.update((key, value) for key, value in optional.items() if value)
    return out


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
            out["mediaType"] = (
                DOCKER_LAYER if descriptor.media_type == OCI_LAYER else DOCKER_LAYER_GZIP
            )
        return out


FORMATS = {
    "oci": MediaTypes(OCI_MANIFEST, OCI_INDEX, OCI_CONFIG, True),
    "docker": MediaTypes(DOCKER_MANIFEST, DOCKER_LIST, DOCKER_CONFIG, False),
}


def config_blob(
    platform: Platform,
    created: int,
    config: Mapping[str, Any],
    layers: Sequence[Layer],
    media_type: str = OCI_CONFIG,
) -> JsonBlob:
    document: dict[str, Any] = {
        "architecture": platform.architecture,
        "os": platform.os,
        "created": rfc3339(created),
        "config": dict(config),
        "rootfs": {"type": "layers", "diff_ids": [str(layer.diff_id) for layer in layers]},
        "history": [
            {"created": rfc3339(created), "created_by": layer.created_by} for layer in layers
        ],
    }
    if platform.variant:
        document["variant"] = platform.variant
    if platform.os_version:
        document["os.version"] = platform.os_version
    return JsonBlob.of(media_type, document)


def manifest_blob(
    config: JsonBlob,
    layers: Sequence[Layer],
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
    layers: Sequence[Layer],
    annotations: Mapping[str, str],
    image_format: str = "oci",
) -> Image:
    """Config and manifest for one platform from finished layers."""
    types = FORMATS[image_format]
    config = config_blob(platform, created, container_config(spec), layers, types.config)
    merged = {ANNOTATION_CREATED: rfc3339(created), **annotations}
    manifest = manifest_blob(config, layers, merged, types)
    return Image(platform, manifest, config, tuple(layers))


def index_blob(
    images: Sequence[Image], annotations: Mapping[str, str], image_format: str = "oci"
) -> JsonBlob:
    """An index naming each image's manifest with its platform, in the order given."""
    types = FORMATS[image_format]
    manifests = [
        Descriptor(
            image.manifest.descriptor.media_type,
            image.manifest.descriptor.digest,
            image.manifest.descriptor.size,
            platform=image.platform,
        ).to_json()
        for image in images
    ]
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": types.index,
        "manifests": manifests,
    }
    if annotations and types.annotations:
        document["annotations"] = dict(annotations)
    return JsonBlob.of(types.index, document)
