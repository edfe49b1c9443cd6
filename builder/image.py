"""Pure assembly of config, manifest and index documents.

Each document is serialised once (canonical JSON); the descriptor is computed
from those bytes, and the same bytes are what sinks store or push.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

from builder.configmerge import merge_config
from builder.model import (
    ANNOTATION_BASE_DIGEST,
    ANNOTATION_BASE_NAME,
    ANNOTATION_CREATED,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    Digest,
    Platform,
    canonical_json,
)
from builder.spec import DEFAULT_PATH, ConfigSpec


class ImageLayer(Protocol):
    """A built layer or a reused base layer: what a manifest and config need of it."""

    @property
    def descriptor(self) -> Descriptor: ...

    @property
    def diff_id(self) -> Digest: ...

    @property
    def created_by(self) -> str: ...

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


def config_blob(
    platform: Platform,
    created: int,
    config: Mapping[str, Any],
    layers: Sequence[ImageLayer],
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
    return JsonBlob.of(OCI_CONFIG, document)


def manifest_blob(
    config: JsonBlob, layers: Sequence[ImageLayer], annotations: Mapping[str, str]
) -> JsonBlob:
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor.to_json(),
        "layers": [layer.descriptor.to_json() for layer in layers],
    }
    if annotations:
        document["annotations"] = dict(annotations)
    return JsonBlob.of(OCI_MANIFEST, document)


def assemble(
    platform: Platform,
    created: int,
    spec: ConfigSpec,
    layers: Sequence[ImageLayer],
    annotations: Mapping[str, str],
    base: BaseParts | None = None,
) -> Image:
    """Config and manifest for one platform from finished layers (after the base's)."""
    if base is None:
        config = config_blob(platform, created, container_config(spec), layers)
        merged = {ANNOTATION_CREATED: rfc3339(created), **annotations}
        manifest = manifest_blob(config, layers, merged)
        return Image(platform, manifest, config, tuple(layers))
    container = merge_config(base.config.get("config"), spec)
    config = config_blob(platform, created, container, layers, base)
    merged = {
        ANNOTATION_CREATED: rfc3339(created),
        ANNOTATION_BASE_NAME: base.name,
        ANNOTATION_BASE_DIGEST: str(base.digest),
        **annotations,
    }
    all_layers = [*base.layers, *layers]
    manifest = manifest_blob(config, all_layers, merged)
    return Image(platform, manifest, config, tuple(all_layers))


def index_blob(manifests: Sequence[Descriptor], annotations: Mapping[str, str]) -> JsonBlob:
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [m.to_json() for m in manifests],
    }
    if annotations:
        document["annotations"] = dict(annotations)
    return JsonBlob.of(OCI_INDEX, document)
