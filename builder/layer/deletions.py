"""``delete`` and ``opaque`` of a layer → whiteout entries, matched on the merged view below."""

from __future__ import annotations

from builder.errors import SourceError
from builder.layer.entries import OPAQUE_MARKER, WHITEOUT_PREFIX, Entry, InlineContent, Kind
from builder.layer.lower import LowerFS
from builder.spec.values import LayerSpec


def _whiteout(path: str) -> str:
    parent, _, name = path.rpartition("/")
    return f"{parent}/{WHITEOUT_PREFIX}{name}" if parent else WHITEOUT_PREFIX + name


def _matches(layer: LayerSpec, lower: LowerFS, key: str, pattern: str) -> list[str]:
    if pattern == "/":
        raise SourceError(f"{layer.where}: {key} '/': the root cannot be deleted")
    found = lower.glob(pattern)
    if not found and not layer.missing_ok:
        raise SourceError(
            f"{layer.where}: {key} '{pattern}' matches nothing in the filesystem below "
            f"layer '{layer.name}'; fix the path or set missing_ok = true"
        )
    return found


def _covered(path: str, deleted: set[str]) -> bool:
    parts = path.split("/")
    return any("/".join(parts[:i]) in deleted for i in range(1, len(parts)))


def whiteout_entries(layer: LayerSpec, lower: LowerFS) -> list[Entry]:
    """One ``.wh.<name>`` per deleted path, one ``.wh..wh..opq`` per opaque directory."""
    deleted = {p for pattern in layer.delete for p in _matches(layer, lower, "delete", pattern)}
    opaque: set[str] = set()
    for pattern in layer.opaque:
        for path in _matches(layer, lower, "opaque", pattern):
            node = lower.get(path)
            if node is None or node.kind is not Kind.DIR:
                raise SourceError(
                    f"{layer.where}: opaque '{pattern}': /{path} is not a directory below"
                )
            opaque.add(path)
    marks = [_whiteout(p) for p in deleted if not _covered(p, deleted)]
    marks += [
        f"{p}/{OPAQUE_MARKER}" for p in opaque if p not in deleted and not _covered(p, deleted)
    ]
    return [Entry(path, Kind.FILE, 0o644, content=InlineContent(b"")) for path in sorted(marks)]
