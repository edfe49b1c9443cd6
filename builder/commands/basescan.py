"""A base layer as the SBOM reads it, kept in the layer cache by its diff_id.

Reading a base layer means decompressing and walking all of it, which costs
more than a build that only copies the base. The members the SBOM needs
(path, kind, mode, owner, link, and the bytes of the package records) depend
only on the layer's bytes, which its diff_id fixes, and on what the SBOM
reads (``SCAN_VERSION``), so a rebuild on the same base reads none of it.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from builder.atomic import atomic_write
from builder.layer.cache import LAYER_SCANS
from builder.layer.entries import Kind
from builder.layer.excerpt import Picker
from builder.layer.lower import Node, StoredLayer
from builder.supply.rootfs import LayerMembers, tar_layer

# Bump when the SBOM reads other files (the ``keep`` predicate, the picker) or other fields.
SCAN_VERSION = 2


def base_layer(
    layer: StoredLayer,
    keep: Callable[[str], bool],
    where: str,
    cache_root: Path | None,
    picker: Picker | None = None,
) -> LayerMembers:
    """The layer's members, from the cache when it has them, else read (and recorded)."""
    record = None
    if cache_root is not None:
        record = cache_root / LAYER_SCANS / f"{SCAN_VERSION}-{layer.diff_id.encoded}.json"
        members = _load(record)
        if members is not None:
            return LayerMembers(layer.diff_id, False, members)
    read = tar_layer(layer, False, keep, where, picker)
    if record is not None:
        _save(record, read.members)
    return read


def _load(record: Path) -> list[tuple[str, Node]] | None:
    try:
        rows = json.loads(record.read_bytes())
        os.utime(record)
        return [_node(row) for row in rows]
    except (OSError, ValueError, TypeError, KeyError, IndexError):
        return None


def _node(row: list[Any]) -> tuple[str, Node]:
    path, kind, mode, uid, gid, linkname, data = row
    content = base64.b64decode(data) if data is not None else None
    return str(path), Node(Kind(kind) if kind else None, mode, uid, gid, linkname, content)


def _save(record: Path, members: list[tuple[str, Node]]) -> None:
    """Best effort: a cache that cannot be written costs only time."""
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
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(record, sync=False) as out:
            out.write(json.dumps(rows).encode())
    except OSError:
        pass
