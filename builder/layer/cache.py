"""The incremental layer cache: unchanged layers are not rebuilt.

Layout of the cache directory (``BALE_CACHE_DIR``, else the user cache dir
``.../bale``), shared with registry pulls::

    blobs/sha256/<hex>     content-addressed blobs
    layers/<key>.json      cache key -> {digest, diffId, size, mediaType, stamp}
    file-hashes/<v>-<hex>.json a layer's diff_id -> each regular file's sha256 and sha1 (the SBOM's)
    layer-scans/<v>-<hex>.json a base layer's diff_id -> its members as the SBOM reads them
    checked/<hex>          an empty mark: a base layer (digest, size, type, diff_id) found sound
    content-keys/<key>.json stat key -> a content key and the registry-cache entry it hit

The key hashes everything that decides a layer's bytes: bale's layer-format
version and compression backends, the codec, the tar mtime, and every entry's
path, type, mode, owner, link target, xattrs and content identity (a wheel
member's is its RECORD sha256, checked when the wheel was first installed; a
tarball member's, the hash of the uncompressed tarball and its place in it). A host
file's identity is its stat data (size, mtime_ns, ctime_ns, inode, device),
as in git's index: its content is not read on a rebuild, and any write to
it changes its ctime. A layer whose files changed within ``RACY_NS`` before
the build is not recorded, because a later write in the same clock tick
could leave the stat data unchanged (git's "racily clean" problem).

Verification before reuse: the record keeps the blob's own stat stamp. If
the blob's stat still matches, it is trusted without reading it; otherwise
it is re-hashed, and either re-stamped or deleted and rebuilt (a blob written
less than ``BLOB_RACY_NS`` ago is not stamped, so its first reuse re-hashes it). This catches
any edit, truncation or replacement of a cached blob for the cost of one
``stat``; it does not catch silent media corruption that leaves the stat
unchanged (``bale cache prune --all`` starts afresh).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.atomic import NEW_SUFFIX, TEMP_SUFFIX, atomic_write, sweep
from builder.cachedir import LOCATIONS_FILE
from builder.errors import BaleError
from builder.layer.build import LOCAL_CACHE, Layer
from builder.layer.contentkey import stat_key
from builder.layer.entries import Entry, HostFile
from builder.model import Codec, Descriptor, Digest
from builder.rebuild import RACY_NS

BLOB_RACY_NS = 50_000_000
HASH_READ = 1 << 20
FILE_HASHES = "file-hashes"
LAYER_SCANS = "layer-scans"
CHECKED = "checked"
CONTENT_KEYS = "content-keys"
Clock = Callable[[], int]
Builder = Callable[[Path], Layer]
layer_key = stat_key


def newest_change(entries: Iterable[Entry]) -> int:
    """The latest mtime/ctime (ns) of the host files among ``entries``."""
    stamps = [
        max(e.content.mtime_ns, e.content.ctime_ns)
        for e in entries
        if isinstance(e.content, HostFile)
    ]
    return max(stamps, default=0)


def still_as_walked(entries: Iterable[Entry]) -> bool:
    """Whether every context file among ``entries`` has the stat data the walk saw."""
    for entry in entries:
        content = entry.content
        if isinstance(content, HostFile):
            try:
                st = os.lstat(content.path)
            except OSError:
                return False
            now = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
            walked = (content.size, content.mtime_ns, content.ctime_ns, content.inode)
            if now != (*walked, content.device):
                return False
    return True


def _stamp(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, sync=False) as out:
        out.write(data)


def hash_file(path: Path) -> tuple[str, int]:
    """sha256 hex and size of a file, read in 1 MiB pieces."""
    hasher = hashlib.sha256()
    size = 0
    with open(path, "rb") as stream:
        while chunk := stream.read(HASH_READ):
            hasher.update(chunk)
            size += len(chunk)
    return hasher.hexdigest(), size


@dataclass(frozen=True, slots=True)
class Record:
    """What a cache key maps to, and the blob stamp seen when it was last verified."""

    descriptor: Descriptor
    diff_id: Digest
    stamp: tuple[int, ...] = ()
    content_key: str = ""

    def to_json(self) -> dict[str, Any]:
        d = self.descriptor
        return {
            "digest": str(d.digest),
            "diffId": str(self.diff_id),
            "size": d.size,
            "mediaType": d.media_type,
            "stamp": list(self.stamp),
            "contentKey": self.content_key,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Record:
        descriptor = Descriptor(obj["mediaType"], Digest.parse(obj["digest"]), int(obj["size"]))
        stamp = tuple(int(v) for v in obj.get("stamp") or ())
        return cls(descriptor, Digest.parse(obj["diffId"]), stamp, str(obj.get("contentKey", "")))


@dataclass(frozen=True, slots=True)
class LayerCache:
    """The cache directory; ``clock`` gives the wall time in ns (tests pin it)."""

    root: Path
    clock: Clock = time.time_ns

    @property
    def blob_dir(self) -> Path:
        return self.root / "blobs" / "sha256"

    def record_path(self, key: str) -> Path:
        return self.root / "layers" / f"{key}.json"

    def checked_path(self, descriptor: Descriptor, diff_id: Digest) -> Path:
        """The marker of a base layer that was read and found sound (digest, diff_id, tar).

        Those are properties of the bytes the digest names, under that media type;
        the bytes themselves are checked against the digest whenever they are copied.
        """
        text = f"{descriptor.digest} {descriptor.size} {descriptor.media_type} {diff_id}"
        return self.root / CHECKED / hashlib.sha256(text.encode()).hexdigest()

    def layer(
        self,
        entries: Sequence[Entry],
        codec: Codec,
        mtime: int,
        build: Builder,
        created_by: str = "",
    ) -> Layer:
        """The cached layer for these inputs, else ``build(blob_dir)`` recorded for next time."""
        key = stat_key(entries, codec, mtime)
        started = self.clock()
        if key is not None:
            hit = self.lookup(key, created_by)
            if hit is not None:
                return hit
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        layer = build(self.blob_dir)
        if key is not None:
            self.remember(key, layer, entries, started)
        return dataclasses.replace(layer, created_by=created_by)

    def remember(self, key: str, layer: Layer, entries: Sequence[Entry], started: int) -> None:
        """Record ``layer`` under a stat ``key``, unless its files changed too recently
        (``started``: the clock before the files were read)."""
        if newest_change(entries) < started - RACY_NS:
            self.put(key, layer)

    def note(
        self, key: str, note: Mapping[str, Any], entries: Sequence[Entry], started: int
    ) -> None:
        """Keep ``note`` (a registry-cache hit not downloaded: its content key, cache and
        entry) under a stat ``key``, so the next build neither hashes the files nor reads
        the cache; not when the files are racy or changed since the walk."""
        if newest_change(entries) < started - RACY_NS and still_as_walked(entries):
            _write_atomic(self.note_path(key), json.dumps(note, sort_keys=True).encode())

    def noted(self, key: str) -> dict[str, Any] | None:
        """The note kept under a stat ``key`` (its mtime refreshed), or None."""
        found = read_record(self.note_path(key))
        return found if isinstance(found, dict) else None

    def note_path(self, key: str) -> Path:
        return self.root / CONTENT_KEYS / f"{key}.json"

    def put(self, key: str, layer: Layer) -> None:
        """Record ``layer`` (a blob in ``blob_dir``) under ``key``; a content key is never racy."""
        record = Record(layer.descriptor, layer.diff_id, content_key=layer.content_key)
        self._store(key, record, layer.path)

    def lookup(self, key: str, created_by: str = "") -> Layer | None:
        """A verified cached layer, or None (a bad blob is deleted)."""
        path = self.record_path(key)
        try:
            record = Record.from_json(json.loads(path.read_bytes()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, BaleError):
            path.unlink(missing_ok=True)
            return None
        blob = self.blob_dir / record.descriptor.digest.encoded
        if not self._verified(key, record, blob):
            return None
        os.utime(path)
        return Layer(
            record.descriptor, record.diff_id, blob, created_by, LOCAL_CACHE, record.content_key
        )

    def _verified(self, key: str, record: Record, blob: Path) -> bool:
        try:
            stamp = tuple(_stamp(blob.stat()))
        except FileNotFoundError:
            return False
        if record.stamp and stamp == record.stamp:
            return True
        digest, size = hash_file(blob)
        if digest != record.descriptor.digest.encoded or size != record.descriptor.size:
            blob.unlink(missing_ok=True)
            return False
        self._store(key, record, blob)
        return True

    def _store(self, key: str, record: Record, blob: Path) -> None:
        """Record ``key``; the blob stamp is kept only when it is not racy."""
        st = blob.stat()
        fresh = max(st.st_mtime_ns, st.st_ctime_ns) >= self.clock() - BLOB_RACY_NS
        stamp = [] if fresh else _stamp(st)
        data = json.dumps({**record.to_json(), "stamp": stamp}, sort_keys=True).encode()
        _write_atomic(self.record_path(key), data)


@dataclass(frozen=True, slots=True)
class Pruned:
    records: int
    blobs: int
    freed: int


def prune(root: Path, max_age_s: float | None, now: float | None = None) -> Pruned:
    """Remove layer records unused for ``max_age_s``, the old blobs no record needs
    and the SBOM's file hashes, layer scans, base-layer check marks and registry-cache
    notes unused as long.

    ``max_age_s=None`` empties the cache. A record's mtime is refreshed on
    every hit; a blob (a layer or a registry pull) is kept while a kept record
    names it or while it is younger than ``max_age_s``. The temps of killed
    bales go too (``sweep_cache``), and records of no-change rebuilds
    (``builder.rebuild``) older than ``max_age_s``.
    """
    cutoff = float("inf") if max_age_s is None else (now or time.time()) - max_age_s
    records = blobs = 0
    freed = sweep_cache(root)
    kept: set[str] = set()
    for path in sorted((root / "layers").glob("*.json")):
        st = path.stat()
        if st.st_mtime < cutoff:
            path.unlink(missing_ok=True)
            records += 1
            continue
        try:
            kept.add(Record.from_json(json.loads(path.read_bytes())).descriptor.digest.encoded)
        except (OSError, ValueError, KeyError, TypeError, BaleError):
            path.unlink(missing_ok=True)
            records += 1
    for path in sorted((root / "rebuilds").glob("*.json")):
        if path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
    for path in sorted(LayerCache(root).blob_dir.glob("*")):
        if path.name.endswith((TEMP_SUFFIX, NEW_SUFFIX)):
            continue  # a live bale's temp: sweep_cache left it alone
        st = path.stat()
        if path.name in kept or st.st_mtime >= cutoff:
            continue
        path.unlink(missing_ok=True)
        freed += st.st_size
        blobs += path.name[0] != "."
    derived = [*(root / FILE_HASHES).glob("*.json"), *(root / LAYER_SCANS).glob("*.json")]
    derived += (root / CONTENT_KEYS).glob("*.json")
    derived += (root / CHECKED).glob("*")
    derived += [path for path in [root / LOCATIONS_FILE] if path.exists()]
    for path in sorted(derived):
        st = path.stat()
        if st.st_mtime < cutoff:
            path.unlink(missing_ok=True)
            freed += st.st_size
    return Pruned(records, blobs, freed)


def sweep_cache(root: Path) -> int:
    """Remove the temps killed bales left in the cache and in TMPDIR; bytes freed."""
    freed = sweep(root / "blobs" / "sha256") + sweep(root / "layers") + sweep(root / CONTENT_KEYS)
    return freed + sweep(Path(tempfile.gettempdir()), "bale-")


def read_record(path: Path) -> Any:
    """The JSON value of a cache record, its mtime refreshed (so pruning keeps it); None
    when it is absent or damaged (deep nesting included): a bad record costs only time."""
    try:
        found = json.loads(path.read_bytes())
        os.utime(path)
    except (OSError, ValueError, RecursionError):
        return None
    return found


def write_record(path: Path, value: Any) -> None:
    """Keep ``value`` as a cache record (canonical JSON, atomically), best effort: a
    cache that cannot be written costs only time."""
    with contextlib.suppress(OSError):
        _write_atomic(path, json.dumps(value, sort_keys=True).encode())
