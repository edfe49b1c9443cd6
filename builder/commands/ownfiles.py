"""bale's own layers as the SBOM sees them, straight from their entries.

The layer blob is not read back. A layer this build wrote had each regular
file hashed (sha256 and sha1), and the files a package catalog reads kept,
from the very bytes written (``build_layer``'s ``bodies``). A layer reused
from a cache has its files hashed from their sources, two files at a time;
an entry's bytes are what the layer holds: the pipeline checked each file's
size as it copied it.

With the layer cache, the hashes (and a ``picker``'s excerpts) are kept under
its ``file-hashes/`` by the layer's diff_id (which fixes every byte of every
file), so a rebuild that reuses a layer does not read its files again.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from builder.layer.cache import FILE_HASHES, read_record, write_record
from builder.layer.entries import Entry, Kind
from builder.layer.excerpt import Picker
from builder.layer.filebody import NO_BODY, Body, Reading, read_bodies
from builder.layer.lower import Node
from builder.model import Digest
from builder.supply.rootfs import LayerMembers, layer_reading

HASH_JOBS = 2
# Bump when a record holds other fields (now: sha256, sha1, the excerpt in base64).
RECORD_VERSION = 2


def own_layer(
    diff_id: Digest,
    entries: Sequence[Entry],
    keep: Callable[[str], bool],
    cache_root: Path | None = None,
    picker: Picker | None = None,
    made: Mapping[str, Body] | None = None,
) -> LayerMembers:
    """One of bale's layers as merged-view members, each regular file hashed.

    ``keep`` names the files kept whole; ``picker`` keeps an excerpt of the others.
    ``made``: what the build took of each file as it wrote the layer (with
    ``attach.own_reading``): used and recorded as it is, no file read again.
    """
    files = [e for e in entries if e.kind is Kind.FILE and e.content is not None]
    reading = layer_reading(True, keep, picker)
    record = record_path(cache_root, diff_id) if cache_root else None
    known = _load(record) if made is None else None
    if made is not None:
        bodies = dict(made)
    elif known is not None:
        bodies = {e.path: _known(e, reading, known) for e in files}
    else:
        bodies = {}
        with ThreadPoolExecutor(HASH_JOBS) as pool:
            shares = [files[n::HASH_JOBS] for n in range(HASH_JOBS)]
            for found in pool.map(lambda share: _bodies(share, reading), shares):
                bodies.update(found)
    if known is None and record is not None:
        write_record(record, {path: _row(path, body, keep) for path, body in bodies.items()})
    members = []
    for entry in entries:
        data, sha256, sha1 = bodies.get(entry.path, NO_BODY)
        node = Node(
            entry.kind, entry.mode, entry.uid, entry.gid, entry.linkname, data, sha256, sha1
        )
        members.append((entry.path, node))
    return LayerMembers(diff_id, True, members)


def record_path(cache_root: Path, diff_id: Digest) -> Path:
    """Where the layer cache keeps the file hashes of the layer ``diff_id`` names."""
    return cache_root / FILE_HASHES / f"{RECORD_VERSION}-{diff_id.encoded}.json"


def _bodies(entries: Sequence[Entry], reading: Reading) -> dict[str, Body]:
    return {entry.path: _body(entry, reading) for entry in entries}


def _body(entry: Entry, reading: Reading) -> Body:
    """What ``reading`` takes of a file, read from its source."""
    assert entry.content is not None
    with entry.content.open() as stream:
        return read_bodies(stream.read, (reading,), entry.path, entry.content.size)[0]


def _row(path: str, body: Body, keep: Callable[[str], bool]) -> list[str | None]:
    """A record row: the hashes, and the excerpt (a kept file is read again instead).

    ``keep`` is asked only of a file with bytes: most have none, and it is asked of each.
    """
    data, sha256, sha1 = body
    excerpt = base64.b64encode(data).decode() if data is not None and not keep(path) else None
    return [sha256, sha1, excerpt]


def _load(record: Path | None) -> dict[str, list[str | None]] | None:
    """Cached rows (path → [sha256, sha1, excerpt]), mtime refreshed; None if absent."""
    found = read_record(record) if record is not None else None
    return found if isinstance(found, dict) else None


def _known(entry: Entry, reading: Reading, known: dict[str, list[str | None]]) -> Body:
    """A file whose hashes the cache holds: only a kept file's bytes are read."""
    row = known.get(entry.path)
    if not isinstance(row, list) or len(row) != 3:
        return _body(entry, reading)
    sha256, sha1, excerpt = str(row[0]), str(row[1]), row[2]
    if reading.keep(entry.path):
        kept = dataclasses.replace(reading, hash_files=False, picker=None)
        return _body(entry, kept)[0], sha256, sha1
    try:
        return (base64.b64decode(excerpt) if excerpt else None), sha256, sha1
    except (binascii.Error, TypeError):
        return _body(entry, reading)
