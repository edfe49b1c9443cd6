"""``bale diff A B``: why two images differ, from config down to single files.

Platform by platform (matched by platform for indexes), the manifest
annotations and config are compared key by key, then the layers position by
position; layers whose diff_ids differ are compared entry by entry.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from builder.commands.inspect import images_of
from builder.formats.locate import Source
from builder.image.layerfiles import FileInfo, layer_files
from builder.image.store import SourceImage, Store
from builder.model import Descriptor, Platform

_ABSENT = "(absent)"


@dataclass(frozen=True, slots=True)
class Difference:
    """One difference: in which platform and part, at which key or file, what changed."""

    platform: str
    where: str
    path: str
    what: str
    a: str
    b: str

    def line(self) -> str:
        path = f" {self.path}:" if self.path else ""
        return f"{self.platform} {self.where}:{path} {self.what} {self.a} -> {self.b}"

    def to_json(self) -> dict[str, str]:
        return {
            "platform": self.platform,
            "where": self.where,
            "path": self.path,
            "what": self.what,
            "a": self.a,
            "b": self.b,
        }

    @property
    def is_file(self) -> bool:
        return self.where.startswith("layer ") and bool(self.path)


def diff_sources(a: Source, b: Source, platform: Platform | None) -> list[Difference]:
    """Every difference between two images; empty when their roots are the same digest."""
    if a.root.digest == b.root.digest:
        return []
    left = images_of(a.store, a.root, platform)
    right = images_of(b.store, b.root, platform)
    if len(left) == 1 and len(right) == 1:
        pairs = [(left[0], right[0])]
        found: list[Difference] = []
    else:
        pairs, found = _match(left, right)
    for one, two in pairs:
        if one.manifest.digest != two.manifest.digest:
            found += _diff_image(a.store, one, b.store, two)
    return found


def _match(
    left: list[SourceImage], right: list[SourceImage]
) -> tuple[list[tuple[SourceImage, SourceImage]], list[Difference]]:
    by_platform = {str(i.platform): i for i in right}
    pairs, found = [], []
    for image in left:
        other = by_platform.pop(str(image.platform), None)
        if other is None:
            found.append(Difference(str(image.platform), "platforms", "", "removed", "", ""))
        else:
            pairs.append((image, other))
    found += [Difference(p, "platforms", "", "added", "", "") for p in by_platform]
    return pairs, found


def _diff_image(sa: Store, a: SourceImage, sb: Store, b: SourceImage) -> list[Difference]:
    platform = str(a.platform)
    found = [
        Difference(platform, "manifest", key, "changed", x, y)
        for key, x, y in _compare(_annotations(a), _annotations(b))
    ]
    config_a = {k: v for k, v in a.config_json.items() if k != "rootfs"}
    config_b = {k: v for k, v in b.config_json.items() if k != "rootfs"}
    found += [
        Difference(platform, "config", key, "changed", x, y)
        for key, x, y in _compare(_flat(config_a, ""), _flat(config_b, ""))
    ]
    diff_ids_a = _diff_ids(a)
    diff_ids_b = _diff_ids(b)
    for number in range(max(len(a.layers), len(b.layers))):
        where = f"layer {number + 1}"
        if number >= len(b.layers):
            found.append(
                Difference(platform, where, "", "removed", str(a.layers[number].digest), "")
            )
            continue
        if number >= len(a.layers):
            found.append(Difference(platform, where, "", "added", "", str(b.layers[number].digest)))
            continue
        la, lb = a.layers[number], b.layers[number]
        ida, idb = diff_ids_a[number], diff_ids_b[number]
        if ida == idb:
            if la.digest != lb.digest:
                found.append(_stored(platform, where, la, lb))
            continue
        if ida in diff_ids_b:
            moved = diff_ids_b.index(ida) + 1
            found.append(Difference(platform, where, "", "moved", ida, f"layer {moved} of B"))
        found += _diff_files(platform, where, sa, la, sb, lb)
    return found


def _stored(platform: str, where: str, la: Descriptor, lb: Descriptor) -> Difference:
    """Same tar, different stored bytes: compression or its settings changed."""
    return Difference(
        platform,
        where,
        "",
        "compression",
        f"{la.media_type} {la.digest}",
        f"{lb.media_type} {lb.digest}",
    )


def _annotations(image: SourceImage) -> dict[str, str]:
    found = json.loads(image.manifest_bytes).get("annotations") or {}
    return _flat({"annotations": found} if found else {}, "")


def _diff_ids(image: SourceImage) -> list[str]:
    ids = (image.config_json.get("rootfs") or {}).get("diff_ids") or []
    return [str(i) for i in ids] + [""] * (len(image.layers) - len(ids))


def _flat(value: Any, prefix: str) -> dict[str, str]:
    """Nested objects → ``a.b.c`` keys; lists and scalars → their JSON text."""
    if isinstance(value, Mapping) and (value or not prefix):
        out: dict[str, str] = {}
        for key, item in value.items():
            out |= _flat(item, f"{prefix}.{key}" if prefix else str(key))
        return out
    return {prefix: json.dumps(value, sort_keys=True)}


def _compare(a: dict[str, str], b: dict[str, str]) -> Iterator[tuple[str, str, str]]:
    for key in sorted(a.keys() | b.keys()):
        x, y = a.get(key, _ABSENT), b.get(key, _ABSENT)
        if x != y:
            yield key, x, y


def _diff_files(
    platform: str, where: str, sa: Store, la: Descriptor, sb: Store, lb: Descriptor
) -> list[Difference]:
    files_a = {f.path: f for f in layer_files(sa, la)}
    files_b = {f.path: f for f in layer_files(sb, lb)}
    found = []
    for path in [*files_a, *(p for p in files_b if p not in files_a)]:
        x, y = files_a.get(path), files_b.get(path)
        if y is None:
            found.append(Difference(platform, where, path, "removed", x.kind if x else "", ""))
        elif x is None:
            found.append(Difference(platform, where, path, "added", "", y.kind))
        else:
            found += [Difference(platform, where, path, *c) for c in _changes(x, y)]
    return found


def _changes(x: FileInfo, y: FileInfo) -> Iterator[tuple[str, str, str]]:
    """What differs between two entries of one path, in a fixed order."""
    checks = (
        ("type", x.kind, y.kind),
        ("content", f"{x.size} bytes sha256:{x.sha256}", f"{y.size} bytes sha256:{y.sha256}"),
        ("mode", f"{x.mode:04o}", f"{y.mode:04o}"),
        ("owner", f"{x.uid}:{x.gid}", f"{y.uid}:{y.gid}"),
        ("mtime", str(x.mtime), str(y.mtime)),
        ("link target", x.linkname, y.linkname),
        ("xattrs", json.dumps(dict(x.xattrs)), json.dumps(dict(y.xattrs))),
    )
    for what, a, b in checks:
        if a != b:
            yield what, a, b
