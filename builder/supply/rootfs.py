"""The image's final filesystem as an SBOM sees it.

Each layer is read once (its diff_id checked) and applied to the layer room's
merged view, whiteouts included. What remains: which layer last wrote each
path, the bytes of the files package databases live in, and the hashes of
the regular files bale's own layers add.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from builder.layer.entries import Kind
from builder.layer.excerpt import Picker
from builder.layer.filebody import Reading
from builder.layer.lower import LowerFS, Node, StoredLayer, read_layer
from builder.model import Digest

MAX_RECORD = 64 << 20


@dataclass(frozen=True, slots=True)
class FileRecord:
    """A regular file of one of bale's own layers, as it is in the final filesystem."""

    path: str
    sha256: str
    sha1: str
    layer: Digest


@dataclass(frozen=True, slots=True)
class Rootfs:
    """Kept file bytes (or a picked excerpt) and the layer (diff_id) that last wrote each path.

    ``where`` names the image in error messages.
    """

    where: str
    contents: Mapping[str, bytes]
    origin: Mapping[str, Digest]
    files: tuple[FileRecord, ...]

    def read(self, path: str) -> bytes | None:
        return self.contents.get(path)

    def kept(self, match: Callable[[str], bool]) -> list[str]:
        """Kept paths ``match`` accepts, sorted."""
        return sorted(path for path in self.contents if match(path))


@dataclass(frozen=True, slots=True)
class LayerMembers:
    """One layer as merged-view members; ``own`` for a layer bale built."""

    diff_id: Digest
    own: bool
    members: list[tuple[str, Node]]


def tar_layer(
    layer: StoredLayer,
    own: bool,
    keep: Callable[[str], bool],
    where: str,
    picker: Picker | None = None,
) -> LayerMembers:
    """A layer read from its blob (diff_id checked); an own layer's files are hashed.

    ``keep`` names the files kept whole; ``picker`` keeps an excerpt of the others.
    """
    reading = layer_reading(own, keep, picker)
    members = read_layer(layer.open(), layer.descriptor, layer.diff_id, where, reading)
    return LayerMembers(layer.diff_id, own, members)


def layer_reading(own: bool, keep: Callable[[str], bool], picker: Picker | None) -> Reading:
    """What the SBOM reads of a layer's files: ``keep``'s whole, the others' excerpts,
    and for one of bale's own layers (``own``) every file's hashes."""
    return Reading(keep, MAX_RECORD, hash_files=own, picker=picker)


def merge(layers: Sequence[LayerMembers], where: str) -> Rootfs:
    """Apply ``layers`` (base first) and keep what the SBOM needs of the result."""
    merged = LowerFS()
    origin: dict[str, Digest] = {}
    for layer in layers:
        merged.apply(layer.members)
        origin.update((path, layer.diff_id) for path, _ in layer.members)
    contents = {p: n.data for p, n in merged.nodes.items() if n.data is not None}
    own = {layer.diff_id for layer in layers if layer.own}
    return Rootfs(where, contents, origin, tuple(_files(merged.nodes.items(), origin, own)))


def read_rootfs(
    layers: Sequence[StoredLayer],
    own_from: int,
    keep: Callable[[str], bool],
    where: str,
    picker: Picker | None = None,
) -> Rootfs:
    """Read ``layers`` from their blobs (base first); those from ``own_from`` on are bale's."""
    read = [tar_layer(layer, n >= own_from, keep, where, picker) for n, layer in enumerate(layers)]
    return merge(read, where)


def _files(
    nodes: Iterable[tuple[str, Node]], origin: Mapping[str, Digest], own: set[Digest]
) -> list[FileRecord]:
    """Regular files last written by one of bale's layers (hashed as they were read)."""
    records = [
        FileRecord(path, node.sha256, node.sha1, origin[path])
        for path, node in nodes
        if node.kind is Kind.FILE and node.sha256 and origin[path] in own
    ]
    return sorted(records, key=lambda record: record.path)
