"""Where each blob was last seen in a registry: a small cache for mounting.

Like skopeo's blob-info cache, bale remembers ``digest → (registry,
repository)`` for every blob it pushed or found in a registry. On a later
push of that blob to another repository of the same registry, it asks the
registry to mount it from there instead of uploading it again.

The file (``blob-locations.json`` in the cache directory) holds only
digests, host names and repository names, never credentials. It is bounded
(the most recently used ``MAX_DIGESTS`` digests, ``MAX_PER_DIGEST``
locations each), merged with what other runs wrote, and replaced atomically.
A missing or unreadable file is an empty cache: it is a hint, never a fact.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

from builder.atomic import atomic_write

MAX_DIGESTS = 4096
MAX_PER_DIGEST = 8
MAX_FILE_BYTES = 4 << 20
_VERSION = 1
_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]{1,256}$")
_NAME = re.compile(r"^[A-Za-z0-9._:/\[\]-]{1,255}$")

Location = tuple[str, str]


class BlobLocations:
    """The cache of one command: loaded on first use, saved by ``save``; thread-safe."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._known: dict[str, list[Location]] | None = None
        self._new: dict[str, list[Location]] = {}

    def repositories(self, digest: str, registry: str) -> list[str]:
        """Repositories of ``registry`` that held ``digest``, most recent first."""
        with self._lock:
            known = self._load()
            return [repo for host, repo in known.get(digest, []) if host == registry]

    def record(self, digest: str, registry: str, repository: str) -> None:
        """Remember that ``registry/repository`` holds ``digest``."""
        if not (_DIGEST.match(digest) and _NAME.match(registry) and _NAME.match(repository)):
            return
        with self._lock:
            for table in (self._load(), self._new):
                _add(table, digest, (registry, repository))

    def save(self) -> None:
        """Merge what this run learnt into the file (if any), atomically."""
        with self._lock:
            if self._path is None or not self._new:
                return
            merged = _read(self._path)
            for digest, places in self._new.items():
                for place in reversed(places):
                    _add(merged, digest, place)
            self._new.clear()
            try:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                with atomic_write(self._path, mode=0o600, sync=False) as out:
                    out.write(_render(merged))
            except OSError:
                return  # a cache that cannot be written only costs a later upload

    def _load(self) -> dict[str, list[Location]]:
        if self._known is None:
            self._known = _read(self._path) if self._path is not None else {}
        return self._known


def _add(table: dict[str, list[Location]], digest: str, place: Location) -> None:
    places = [p for p in table.pop(digest, []) if p != place]
    table[digest] = [place, *places][:MAX_PER_DIGEST]
    while len(table) > MAX_DIGESTS:
        del table[next(iter(table))]


def _read(path: Path) -> dict[str, list[Location]]:
    """The file's table, oldest first; anything unexpected is skipped."""
    try:
        with path.open("rb") as stream:
            data: Any = json.loads(stream.read(MAX_FILE_BYTES + 1)[:MAX_FILE_BYTES])
        blobs = data["blobs"] if data.get("version") == _VERSION else {}
    except (OSError, ValueError, TypeError, AttributeError, KeyError, RecursionError):
        return {}
    table: dict[str, list[Location]] = {}
    if not isinstance(blobs, dict):
        return table
    for digest, places in list(blobs.items())[-MAX_DIGESTS:]:
        valid = _places(places) if isinstance(digest, str) and _DIGEST.match(digest) else []
        if valid:
            table[digest] = valid[:MAX_PER_DIGEST]
    return table


def _places(value: Any) -> list[Location]:
    """The well-formed ``[registry, repository]`` pairs of one entry."""
    if not isinstance(value, list):
        return []
    return [
        (item[0], item[1])
        for item in value
        if isinstance(item, list)
        and len(item) == 2
        and all(isinstance(part, str) and _NAME.match(part) for part in item)
    ]


def _render(table: dict[str, list[Location]]) -> bytes:
    blobs = {digest: [list(p) for p in places] for digest, places in table.items()}
    return json.dumps({"version": _VERSION, "blobs": blobs}, indent=0).encode() + b"\n"
