"""bale's own layers as the SBOM sees them, straight from their entries.

The layer blob is not read back: each regular file is hashed (sha256 and
sha1) from its source, two files at a time, and the files a package catalog
reads are kept. An entry's bytes are what the layer holds: the pipeline
checked each file's size as it copied it.

With the layer cache, the hashes are kept under its ``file-hashes/`` by the
layer's diff_id (which fixes every byte of every file), so a rebuild that
reuses a layer does not hash its files again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from builder.atomic import atomic_write
from builder.layer.cache import FILE_HASHES
from builder.layer.entries import Entry, Kind
from builder.layer.lower import Node
from builder.model import Digest
from builder.supply.rootfs import MAX_RECORD, LayerMembers

HASH_JOBS = 2
READ_SIZE = 1 << 20
Body = tuple[bytes | None, str, str]


def own_layer(
    diff_id: Digest,
    entries: Sequence[Entry],
    keep: Callable[[str], bool],
    cache_root: Path | None = None,
) -> LayerMembers:
    """One of bale's layers as merged-view members, each regular file hashed."""
    files = [e for e in entries if e.kind is Kind.FILE and e.content is not None]
    record = cache_root / FILE_HASHES / f"{diff_id.encoded}.json" if cache_root else None
    known = _load(record)
    if known is not None:
        bodies = {e.path: _kept(e, keep, known) for e in files}
    else:
        bodies = {}
        with ThreadPoolExecutor(HASH_JOBS) as pool:
            shares = [files[n::HASH_JOBS] for n in range(HASH_JOBS)]
            for found in pool.map(lambda share: _bodies(share, keep), shares):
                bodies.update(found)
        if record is not None:
            _save(record, {path: [body[1], body[2]] for path, body in bodies.items()})
    members = []
    for entry in entries:
        data, sha256, sha1 = bodies.get(entry.path, (None, "", ""))
        node = Node(
            entry.kind, entry.mode, entry.uid, entry.gid, entry.linkname, data, sha256, sha1
        )
        members.append((entry.path, node))
    return LayerMembers(diff_id, True, members)


def _bodies(entries: Sequence[Entry], keep: Callable[[str], bool]) -> dict[str, Body]:
    return {entry.path: _body(entry, keep(entry.path)) for entry in entries}


def _body(entry: Entry, kept: bool) -> Body:
    """The kept bytes (if ``kept`` and small enough), sha256 and sha1 of a file entry."""
    assert entry.content is not None
    sha256, sha1 = hashlib.sha256(), hashlib.sha1()
    kept = kept and entry.content.size <= MAX_RECORD
    chunks = []
    with entry.content.open() as stream:
        while chunk := stream.read(READ_SIZE):
            sha256.update(chunk)
            sha1.update(chunk)
            if kept:
                chunks.append(chunk)
    return (b"".join(chunks) if kept else None), sha256.hexdigest(), sha1.hexdigest()


def _load(record: Path | None) -> dict[str, list[str]] | None:
    """Cached hashes (path → [sha256, sha1]), the record's mtime refreshed; None if absent."""
    if record is None:
        return None
    try:
        found = json.loads(record.read_bytes())
        os.utime(record)
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _save(record: Path, hashes: dict[str, list[str]]) -> None:
    """Best effort: a cache that cannot be written costs only time."""
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(record, sync=False) as out:
            out.write(json.dumps(hashes, sort_keys=True).encode())
    except OSError:
        pass


def _kept(entry: Entry, keep: Callable[[str], bool], known: dict[str, list[str]]) -> Body:
    """A file whose hashes the cache holds: only a kept file's bytes are read."""
    hashes = known.get(entry.path)
    if not isinstance(hashes, list) or len(hashes) != 2:
        return _body(entry, keep(entry.path))
    if not keep(entry.path):
        return None, str(hashes[0]), str(hashes[1])
    data, _, _ = _body(entry, True)
    return data, str(hashes[0]), str(hashes[1])
