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
    OCI_CONFIG,
    OCI_INDEX,
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


def config_blob(
    platform: Platform, created: int, config: Mapping[str, Any], layers: Sequence[Layer]
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
    return JsonBlob.of(OCI_CONFIG, document)


def manifest_blob(
    config: JsonBlob, layers: Sequence[Layer], annotations: Mapping[str, str]
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
    layers: Sequence[Layer],
    annotations: Mapping[str, str],
) -> Image:
    """Config and manifest for one platform from finished layers."""
    config = config_blob(platform, created, container_config(spec), layers)
    merged = {ANNOTATION_CREATED: rfc3339(created), **annotations}
    manifest = manifest_blob(config, layers, merged)
    return Image(platform, manifest, config, tuple(layers))


def index_blob(manifests: Sequence[Descriptor], annotations: Mapping[str, str]) -> JsonBlob:
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [m.to_json() for m in manifests],
    }
    if annotations:
        document["annotations"] = dict(annotations)
    return JsonBlob.of(OCI_INDEX, document)
