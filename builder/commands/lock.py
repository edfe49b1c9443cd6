"""``image.lock``: the registry base of image.toml resolved to digests.

A tag such as ``python:3.12-slim`` moves; the lock records what it meant when
``bale lock`` ran: the digest of the manifest or index the tag named, and the
manifest digest of every platform it offers. ``bale build`` pins the base to
the locked digest when the lock's reference matches image.toml's ``base``;
``--locked`` makes a missing or disagreeing lock an error. The file is JSON
with sorted keys and a final newline, so the same resolution gives the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from builder.atomic import atomic_write
from builder.commands.bases import open_store
from builder.errors import LockError
from builder.image.store import platforms_of, resolve_image
from builder.model import INDEX_TYPES, Digest
from builder.registry.options import Clients
from builder.spec.locations import Location
from builder.spec.values import ImageSpec

LOCK_NAME = "image.lock"
LOCK_VERSION = 1


@dataclass(frozen=True, slots=True)
class LockedBase:
    """``reference`` as written in image.toml, resolved to ``digest`` and per-platform manifests."""

    reference: str
    resolved: str
    digest: Digest
    media_type: str
    platforms: tuple[tuple[str, Digest], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "resolved": self.resolved,
            "digest": str(self.digest),
            "mediaType": self.media_type,
            "platforms": {name: str(digest) for name, digest in self.platforms},
        }


def lock_path(spec: ImageSpec) -> Path:
    return spec.path.parent / LOCK_NAME


def resolve(spec: ImageSpec, clients: Clients) -> LockedBase | None:
    """Ask the registry what the base names now (None: the base is not in a registry)."""
    ref = spec.base_ref
    if ref is None or ref.transport != "docker":
        return None
    store, root = open_store(ref, clients)
    if root.media_type in INDEX_TYPES:
        found = [(str(d.platform), d.digest) for d in platforms_of(store, root)]
    else:
        image = resolve_image(store, root, None)
        found = [(str(image.platform), root.digest)]
    return LockedBase(spec.base, ref.reference, root.digest, root.media_type, tuple(sorted(found)))


def render(base: LockedBase | None) -> bytes:
    document = {"version": LOCK_VERSION, "base": base.to_json() if base else None}
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def write(path: Path, data: bytes) -> None:
    """Replace the lock file whole (0644: it is meant to be committed)."""
    with atomic_write(path) as out:
        out.write(data)


def read(path: Path) -> LockedBase | None:
    """The lock's base entry (None when the lock says the base is not from a registry)."""
    try:
        document = json.loads(path.read_bytes())
        if document.get("version") != LOCK_VERSION:
            raise ValueError(f"version {document.get('version')!r}, expected {LOCK_VERSION}")
        base = document["base"]
        if base is None:
            return None
        platforms = tuple(sorted((k, Digest.parse(v)) for k, v in base["platforms"].items()))
        return LockedBase(
            str(base["reference"]),
            str(base["resolved"]),
            Digest.parse(base["digest"]),
            str(base["mediaType"]),
            platforms,
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LockError(f"{path} is not a valid bale lock ({exc}); run 'bale lock' again") from None


@dataclass(frozen=True, slots=True)
class Pinned:
    """The base to build on, and a note for the user when the lock was not used."""

    base_ref: Location | None
    note: str = ""


def pinned_base(spec: ImageSpec, locked: bool) -> Pinned:
    """image.toml's base, pinned to the lock's digest when the lock matches it."""
    path = lock_path(spec)
    ref = spec.base_ref
    if not path.exists():
        if locked:
            raise LockError(f"--locked: {path} does not exist; run 'bale lock -f {spec.path}'")
        return Pinned(ref)
    entry = read(path)
    written = entry.reference if entry else "scratch or a local image"
    is_registry = ref is not None and ref.transport == "docker"
    if entry is None or ref is None or not is_registry or entry.reference != spec.base:
        if not is_registry and entry is None:
            return Pinned(ref)
        message = (
            f"{path} locks base '{written}' but {spec.path} has base '{spec.base}'; "
            f"run 'bale lock -f {spec.path}' to update it"
        )
        if locked:
            raise LockError(f"--locked: {message}")
        return Pinned(ref, f"warning: {message}; building from the unlocked base")
    return Pinned(replace(ref, digest=str(entry.digest)))
