"""A base layer as the SBOM reads it, kept in the layer cache by its diff_id.

Reading a base layer means decompressing and walking all of it, which costs
more than a build that only copies the base. The members the SBOM needs
(path, kind, mode, owner, link, and the bytes of the package records) depend
only on the layer's bytes, which its diff_id fixes, and on what the SBOM
reads (``SCAN_VERSION``), so a rebuild on the same base reads none of it.

A build that reads its base layers anyway (to check them, or to plan
``delete`` and ``[[users]]`` against them) takes the SBOM's members in the
same pass (``BaseScans``), so each base layer is decompressed once.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

from builder.layer.cache import LAYER_SCANS, read_record, write_record
from builder.layer.entries import Kind
from builder.layer.excerpt import Picker
from builder.layer.filebody import Reading
from builder.layer.lower import Node, StoredLayer
from builder.model import Digest
from builder.supply.rootfs import LayerMembers, layer_reading, tar_layer

# Bump when the SBOM reads other files (the ``keep`` predicate, the picker) or other fields.
SCAN_VERSION = 2


class BaseScans:
    """The SBOM's members of one image's base layers, each taken from the layer cache,
    from the build's own pass over the layer (``plan_layers``' ``scan``), or read."""

    def __init__(
        self,
        keep: Callable[[str], bool],
        where: str,
        cache_root: Path | None,
        picker: Picker | None = None,
    ) -> None:
        self.keep, self.where, self.cache_root, self.picker = keep, where, cache_root, picker
        self.found: dict[Digest, LayerMembers] = {}

    @property
    def reading(self) -> Reading:
        return layer_reading(False, self.keep, self.picker)

    def wants(self, layer: StoredLayer) -> bool:
        """Whether ``layer`` has to be read: neither taken yet nor in the cache."""
        if layer.diff_id in self.found:
            return False
        members = _load(_record(self.cache_root, layer))
        if members is None:
            return True
        self.found[layer.diff_id] = LayerMembers(layer.diff_id, False, members)
        return False

    def record(self, layer: StoredLayer, members: list[tuple[str, Node]]) -> None:
        self.found[layer.diff_id] = LayerMembers(layer.diff_id, False, members)
        _save(_record(self.cache_root, layer), members)

    def members(self, layer: StoredLayer) -> LayerMembers:
        """The layer's members: as taken, else from the cache, else read now."""
        found = self.found.get(layer.diff_id)
        if found is None:
            found = base_layer(layer, self.keep, self.where, self.cache_root, self.picker)
        return found


def base_layer(
    layer: StoredLayer,
    keep: Callable[[str], bool],
    where: str,
    cache_root: Path | None,
    picker: Picker | None = None,
) -> LayerMembers:
    """The layer's members, from the cache when it has them, else read (and recorded)."""
    record = _record(cache_root, layer)
    members = _load(record)
    if members is not None:
        return LayerMembers(layer.diff_id, False, members)
    read = tar_layer(layer, False, keep, where, picker)
    _save(record, read.members)
    return read


def _record(cache_root: Path | None, layer: StoredLayer) -> Path | None:
    """Where the layer cache keeps the scan of ``layer``; None without a cache."""
    if cache_root is None:
        return None
    return cache_root / LAYER_SCANS / f"{SCAN_VERSION}-{layer.diff_id.encoded}.json"


def _load(record: Path | None) -> list[tuple[str, Node]] | None:
    rows = read_record(record) if record is not None else None
    if not isinstance(rows, list):
        return None
    try:
        return [_node(row) for row in rows]
    except (ValueError, TypeError, KeyError, IndexError):
        return None


def _node(row: list[Any]) -> tuple[str, Node]:
    path, kind, mode, uid, gid, linkname, data = row
    content = base64.b64decode(data) if data is not None else None
    return str(path), Node(Kind(kind) if kind else None, mode, uid, gid, linkname, content)


def _save(record: Path | None, members: list[tuple[str, Node]]) -> None:
    """Best effort: a cache that cannot be written costs only time."""
    if record is None:
        return
    rows = [
        [
            path,
            node.kind.value if node.kind else None,
            node.mode,
            node.uid,
            node.gid,
            node.linkname,
            base64.b64encode(node.data).decode() if node.data is not None else None,
        ]
        for path, node in members
    ]
    write_record(record, rows)
