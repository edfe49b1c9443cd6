"""``bale inspect``: the tree index → manifests → config → layers of any image.

Works on any Store (layouts, archives, and a registry once it plugs into
``locate.open_registry``). ``describe`` makes the JSON document; ``render``
turns that same document into text, so both outputs always agree.
"""

from __future__ import annotations

import json
from typing import Any

from builder.errors import ImageError
from builder.formats.locate import Source
from builder.formats.referrers import referrers_of
from builder.image.layerfiles import FileInfo, layer_listing, measure, tar_tv
from builder.image.store import SourceImage, Store, platforms_of, read_document, resolve_image
from builder.model import INDEX_TYPES, Descriptor, Platform

_CONFIG_KEYS = (
    ("Entrypoint", "entrypoint"),
    ("Cmd", "cmd"),
    ("Env", "env"),
    ("User", "user"),
    ("WorkingDir", "workdir"),
    ("ExposedPorts", "ports"),
    ("Volumes", "volumes"),
    ("Labels", "labels"),
    ("StopSignal", "stopSignal"),
)


def images_of(store: Store, root: Descriptor, platform: Platform | None) -> list[SourceImage]:
    """Every platform image under ``root`` (or just ``platform``'s), index order."""
    if root.media_type not in INDEX_TYPES:
        return [resolve_image(store, root, platform)]
    if platform is not None:
        return [resolve_image(store, root, platform)]
    found = []
    for entry in platforms_of(store, root):
        if entry.media_type in INDEX_TYPES:
            raise ImageError(f"{store.name}: nested index {entry.digest} is not supported")
        found.append(resolve_image(store, entry, None))
    return found


def one_image(source: Source, platform: Platform | None) -> SourceImage:
    images = images_of(source.store, source.root, platform)
    if len(images) > 1:
        offered = ", ".join(str(i.platform) for i in images)
        raise ImageError(
            f"{source.text} holds several platforms ({offered}); pick one with --platform"
        )
    return images[0]


def raw_root(source: Source, platform: Platform | None) -> bytes:
    """The exact bytes of the root (or, with a platform, of that platform's manifest)."""
    if platform is None:
        return read_document(source.store, source.root)[0]
    return one_image(source, platform).manifest_bytes


def describe(source: Source, platform: Platform | None, files: bool) -> dict[str, Any]:
    """Everything ``inspect --json`` prints."""
    store, root = source.store, source.root
    out: dict[str, Any] = {"source": source.text, "root": _descriptor(root)}
    if root.media_type in INDEX_TYPES:
        _, index = read_document(store, root)
        out["annotations"] = dict(index.get("annotations") or {})
        out["referrers"] = referrers_json(store, root)
    out["images"] = [_image(store, i, files) for i in images_of(store, root, platform)]
    return out


def referrers_json(store: Store, subject: Descriptor) -> list[dict[str, Any]]:
    """Artifact type, digest and size of each referrer of ``subject`` (signatures, SBOMs)."""
    return [
        {**_descriptor(r), "artifactType": r.artifact_type}
        for r in sorted(
            referrers_of(store, subject.digest), key=lambda r: (r.artifact_type, str(r.digest))
        )
    ]


def _descriptor(descriptor: Descriptor) -> dict[str, Any]:
    return {
        "mediaType": descriptor.media_type,
        "digest": str(descriptor.digest),
        "size": descriptor.size,
    }


def _image(store: Store, image: SourceImage, files: bool) -> dict[str, Any]:
    manifest = json.loads(image.manifest_bytes)
    config = image.config_json
    container = config.get("config") or {}
    summary: dict[str, Any] = {**_descriptor(image.config), "created": config.get("created")}
    for key, name in _CONFIG_KEYS:
        value = container.get(key)
        if isinstance(value, dict) and key in ("ExposedPorts", "Volumes"):
            value = sorted(value)
        summary[name] = value
    history = [h for h in config.get("history") or [] if not h.get("empty_layer")]
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    layers = []
    for number, layer in enumerate(image.layers):
        listing = layer_listing(store, layer) if files else None
        size, diff_id = listing[1:] if listing else measure(store, layer)
        item = {
            **_descriptor(layer),
            "diffId": diff_ids[number] if number < len(diff_ids) else None,
            "uncompressedSize": size,
            "history": history[number].get("created_by", "") if number < len(history) else "",
        }
        if item["diffId"] != str(diff_id):
            raise ImageError(
                f"{store.name}: layer {layer.digest} unpacks to {diff_id}, but the config "
                f"says {item['diffId']}; the image is corrupt"
            )
        if listing:
            item["files"] = [f.to_json() for f in listing[0]]
        layers.append(item)
    return {
        "platform": str(image.platform),
        "referrers": referrers_json(store, image.manifest),
        "manifest": {
            **_descriptor(image.manifest),
            "annotations": dict(manifest.get("annotations") or {}),
        },
        "config": summary,
        "layers": layers,
    }


def render(doc: dict[str, Any]) -> list[str]:
    """The text form of ``describe``'s document."""
    lines = [doc["source"]]
    root = doc["root"]
    indent = ""
    if "annotations" in doc:
        lines.append(f"index {root['digest']} {root['size']} bytes {root['mediaType']}")
        lines += [f"  {k}: {v}" for k, v in sorted(doc["annotations"].items())]
        lines += _render_referrers(doc["referrers"], "  ")
        indent = "  "
    for image in doc["images"]:
        lines += _render_image(image, indent)
    return lines


def _render_referrers(referrers: list[dict[str, Any]], pad: str) -> list[str]:
    if not referrers:
        return []
    lines = [f"{pad}referrers: {len(referrers)}"]
    lines += [f"{pad}  {r['artifactType']} {r['digest']} {r['size']} bytes" for r in referrers]
    return lines


def _render_image(image: dict[str, Any], pad: str) -> list[str]:
    m, c = image["manifest"], image["config"]
    lines = [f"{pad}manifest {image['platform']} {m['digest']} {m['size']} bytes {m['mediaType']}"]
    lines += [f"{pad}  annotation {k}: {v}" for k, v in sorted(m["annotations"].items())]
    lines.append(f"{pad}  config {c['digest']} {c['size']} bytes")
    for key in ("created", *(name for _, name in _CONFIG_KEYS)):
        value = c.get(key)
        if value in (None, [], {}, ""):
            continue
        if isinstance(value, dict):
            value = [f"{k}={v}" for k, v in sorted(value.items())]
        if isinstance(value, list) and key in ("env", "labels", "ports", "volumes"):
            lines.append(f"{pad}    {key}:")
            lines += [f"{pad}      {v}" for v in value]
        else:
            shown = json.dumps(value) if isinstance(value, list) else value
            lines.append(f"{pad}    {key}: {shown}")
    lines += _render_referrers(image["referrers"], pad + "  ")
    lines.append(f"{pad}  layers: {len(image['layers'])}")
    for number, layer in enumerate(image["layers"], 1):
        lines.append(f"{pad}    {number}. {layer['digest']} {layer['mediaType']}")
        lines.append(f"{pad}       {layer['size']} bytes, {layer['uncompressedSize']} uncompressed")
        lines.append(f"{pad}       diff_id {layer['diffId']}")
        if layer["history"]:
            lines.append(f"{pad}       history: {layer['history']}")
        for entry in layer.get("files", []):
            lines.append(f"{pad}       {tar_tv(FileInfo.from_json(entry))}")
    return lines
