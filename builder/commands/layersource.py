"""Where each layer of a build comes from: the local cache, a registry cache, or a build.

In order, stopping at the first that has it:

1. the local cache by stat key (a developer's warm rebuild: no file is read);
2. with registry caches configured, the content key (every context file
   hashed) in the local cache, then in the ``--cache-from`` caches; a hit
   that was not downloaded (a push needs none) is noted by stat key, so the
   next build here hashes nothing and asks only whether the blob is still there;
3. a build, which hashes the files as it reads them, so the content key it
   records and publishes names exactly the bytes that went into the layer.

A registry hit is used only once verified: its blob must still be in the
cache's repository at the recorded size; an output that needs the bytes
downloads it (digest checked) and checks its diff_id. With SBOMs on, an
image whose every layer is a hit may have its SBOMs kept in the cache under
their memo keys (``recall``), taken whole; else the SBOM fetches each hit's
file-hashes record (``fetch_records``, ``filerecords``), so it reads none of
the layer's files. Any failure of a registry cache is a miss and one warning
line; the build goes on cold.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from threading import RLock
from typing import TYPE_CHECKING, Any, Protocol, Union

from builder.errors import BaleError
from builder.layer.build import REGISTRY_CACHE, Layer
from builder.layer.cache import LayerCache, newest_change, still_as_walked
from builder.layer.contentkey import (
    HASH_READ,
    content_key,
    entry_texts,
    hash_host_files,
    stat_key,
)
from builder.layer.decompress import decompressed
from builder.layer.entries import Entry
from builder.model import Codec, Descriptor, Digest, Platform, layer_codec
from builder.rebuild import RACY_NS
from builder.reference import Reference
from builder.registry.layercache import DEFAULT_MAX_ENTRIES

if TYPE_CHECKING:
    from builder.registry.client import RegistryClient
    from builder.registry.layercache import CachedDocument, CacheEntry, RemoteLayer
    from builder.registry.locations import BlobLocations
    from builder.registry.options import Clients

AnyLayer = Union[Layer, "RemoteLayer"]
Make = Callable[[Path, "dict[str, str] | None"], Layer]
Warn = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class RegistryCaches:
    """``--cache-from``/``--cache-to`` references and the size limit of what is written."""

    sources: tuple[Reference, ...] = ()
    targets: tuple[Reference, ...] = ()
    max_entries: int = DEFAULT_MAX_ENTRIES

    @property
    def active(self) -> bool:
        return bool(self.sources or self.targets)


class ClientSource(Protocol):
    """Where the registry cache gets its clients: ``Clients``, or ``CacheClients``."""

    def get(self, registry: str) -> RegistryClient: ...

    @property
    def locations(self) -> BlobLocations:
        """Where the build's pushes look for a blob to mount."""
        ...


@dataclass(frozen=True, slots=True)
class CacheClients:
    """The build's own client for a registry it pushes to (one connection, one token),
    else a client whose requests are tried twice: a cache is only an optimisation."""

    main: Clients
    own: Clients
    pushed: frozenset[str]

    def get(self, registry: str) -> RegistryClient:
        return (self.main if registry in self.pushed else self.own).get(registry)

    @property
    def locations(self) -> BlobLocations:
        return self.main.locations


@dataclass
class _Found:
    """The merged entries and documents of every ``--cache-from`` cache, read once on
    first use."""

    entries: dict[str, tuple[CacheEntry, Reference]] = field(default_factory=dict)
    documents: dict[str, tuple[CachedDocument, Reference]] = field(default_factory=dict)
    loaded: bool = False


class LayerResolver:
    """Finds or builds each layer; remembers what to publish to ``--cache-to``."""

    def __init__(
        self,
        local: LayerCache | None,
        caches: RegistryCaches,
        clients: ClientSource | None,
        work: Path,
        needs_bytes: bool,
        warn: Warn,
        records: bool = False,
    ) -> None:
        """``records``: keep each hit's file-hashes record for ``fetch_records`` (SBOMs on)."""
        self.local, self.caches, self.clients = local, caches, clients
        self.work, self.needs_bytes, self.warn = work, needs_bytes, warn
        self.records = records and local is not None
        self.found = _Found()
        self.lock = RLock()
        self.failed: set[str] = set()
        self.warned: set[str] = set()
        self.publish: dict[str, tuple[AnyLayer, str]] = {}
        # Hits whose file-hashes records the SBOM may want (fetched only if it does).
        self.pending: dict[Digest, tuple[CacheEntry, Reference]] = {}

    def layer(
        self, entries: Sequence[Entry], codec: Codec, mtime: int, make: Make, platform: Platform
    ) -> AnyLayer:
        """The layer for ``entries``, from the cheapest place that has it."""
        local, active = self.local, self.caches.active
        texts = entry_texts(entries) if active and self.caches.sources else None
        skey = stat_key(entries, codec, mtime, texts) if local is not None else None
        started = local.clock() if local is not None else 0
        if local is not None and skey is not None:
            hit = local.lookup(skey)
            if hit is not None:
                if self.caches.targets and not hit.content_key:
                    hit = self._keyed(local, hit, entries, codec, mtime, skey, started)
                return self._note(hit, platform)
        ckey, noted = None, None
        if active and self.caches.sources:
            noted = local.noted(skey) if local is not None and skey is not None else None
            ckey = _noted_key(noted) or content_key(
                entries, codec, mtime, hash_host_files(entries), texts
            )
        if local is not None and ckey is not None:
            hit = local.lookup(ckey)
            if hit is not None:
                if skey is not None:
                    local.remember(skey, hit, entries, started)
                return self._note(hit, platform)
        if ckey is not None:
            remote = self._remote(ckey, codec, noted)
            if remote is not None:
                if local is not None and skey is not None:
                    self._remember(local, skey, remote, entries, started)
                return self._note(remote, platform)
        return self._build(entries, codec, mtime, make, platform, skey, started)

    def _remember(
        self, local: LayerCache, skey: str, remote: AnyLayer, entries: Sequence[Entry], started: int
    ) -> None:
        """A registry hit kept by stat key: the layer if downloaded, else a note of it."""
        if isinstance(remote, Layer):
            local.remember(skey, remote, entries, started)
            return
        with self.lock:
            entry, ref = self.found.entries[remote.content_key]
        note = {"contentKey": remote.content_key, "cache": str(ref), "entry": entry.to_json()}
        local.note(skey, note, entries, started)

    def _keyed(
        self,
        local: LayerCache,
        hit: Layer,
        entries: Sequence[Entry],
        codec: Codec,
        mtime: int,
        skey: str,
        started: int,
    ) -> Layer:
        """A local hit recorded without a content key (no registry cache then): hash its
        files, and keep the key only if their stat data proves them the bytes of the layer."""
        hashes = hash_host_files(entries)
        if newest_change(entries) >= started - RACY_NS or not still_as_walked(entries):
            return hit
        key = content_key(entries, codec, mtime, hashes)
        if key is None:
            return hit
        keyed = dataclasses.replace(hit, content_key=key)
        local.put(skey, keyed)
        local.put(key, keyed)
        return keyed

    def _build(
        self,
        entries: Sequence[Entry],
        codec: Codec,
        mtime: int,
        make: Make,
        platform: Platform,
        skey: str | None,
        started: int,
    ) -> AnyLayer:
        hashes: dict[str, str] | None = {} if self.caches.active else None
        directory = self.work if self.local is None else self.local.blob_dir
        layer = make(directory, hashes)
        if hashes is not None:
            key = content_key(entries, codec, mtime, hashes)
            layer = dataclasses.replace(layer, content_key=key or "")
        if self.local is not None:
            if skey is not None:
                self.local.remember(skey, layer, entries, started)
            if layer.content_key:
                self.local.put(layer.content_key, layer)
        return self._note(layer, platform)

    def _note(self, layer: AnyLayer, platform: Platform) -> AnyLayer:
        if layer.content_key and self.caches.targets:
            with self.lock:
                self.publish[layer.content_key] = (layer, str(platform))
        return layer

    def _remote(self, key: str, codec: Codec, noted: Mapping[str, Any] | None) -> AnyLayer | None:
        """A verified layer of a ``--cache-from`` cache, or None (a miss, maybe warned).

        The cache a ``noted`` hit came from is not read again when it is still named.
        """
        with self.lock:
            found = self._noted_entry(key, noted)
            if found is None and not self.found.loaded:
                self._load()
            found = self.found.entries.get(key)
        if found is None:
            return None
        entry, ref = found
        if entry.descriptor.media_type != codec.media_type or ref.name in self.failed:
            return None
        try:
            return self._fetch(key, entry, ref)
        except (BaleError, OSError) as exc:
            self._fail(ref, exc)
            return None

    def _noted_entry(
        self, key: str, noted: Mapping[str, Any] | None
    ) -> tuple[CacheEntry, Reference] | None:
        """The entry a note kept, when its cache is among the ``--cache-from`` caches."""
        from builder.registry.layercache import CacheEntry

        refs = {str(ref): ref for ref in self.caches.sources}
        if noted is None or noted.get("cache") not in refs or key in self.found.entries:
            return None
        try:
            entry = CacheEntry.from_json(noted["entry"])
        except (BaleError, ValueError, KeyError, TypeError):
            return None
        found = (entry, refs[str(noted["cache"])])
        self.found.entries[key] = found
        return found

    def _load(self) -> None:
        from builder.registry.layercache import read_cache

        self.found.loaded = True
        for ref in self.caches.sources:
            try:
                artifact = read_cache(self._client(ref), ref)
            except (BaleError, OSError) as exc:
                self._fail(ref, exc)
                continue
            for key, entry in artifact.entries.items():
                self.found.entries.setdefault(key, (entry, ref))
            for key, document in artifact.documents.items():
                self.found.documents.setdefault(key, (document, ref))

    def source_record(self, key: str) -> tuple[Descriptor, Reference] | None:
        """The file-hashes record the cache entry of the hit ``key`` names, and that cache."""
        with self.lock:
            found = self.found.entries.get(key)
        if found is None or found[0].files is None:
            return None
        return found[0].files, found[1]

    def recall(self, key: str, media_type: str) -> bytes | None:
        """The SBOM a ``--cache-from`` cache keeps under ``key`` (its digest checked), or
        None; a push of it mounts it from there. Only caches this build has read already
        are asked: a build whose layers were all local hits makes its SBOM from the local
        cache's records."""
        with self.lock:
            found = self.found.documents.get(key)
        if found is None:
            return None
        document, ref = found
        d = document.descriptor
        if d.media_type != media_type or ref.name in self.failed:
            return None
        buffer = io.BytesIO()
        try:
            self._client(ref).get_blob(ref.repository, d, buffer)
        except (BaleError, OSError) as exc:
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            self._once(ref, f"SBOM {d.digest} not used: {first}")
            return None
        if self.clients is not None:
            self.clients.locations.record(str(d.digest), ref.registry, ref.repository)
        return buffer.getvalue()

    def _fetch(self, key: str, entry: CacheEntry, ref: Reference) -> AnyLayer | None:
        from builder.registry.layercache import RemoteLayer
        from builder.registry.store import RegistryStore

        client = self._client(ref)
        d = entry.descriptor
        if client.blob_size(ref.repository, d.digest) != d.size:
            self._once(ref, f"layer {d.digest} is gone from {ref.name}; layers it lacks are built")
            return None
        root = self.work if self.local is None else self.local.root
        if self.records and entry.files is not None:
            with self.lock:
                self.pending[entry.diff_id] = (entry, ref)
        store = RegistryStore(client, ref, root)
        if not self.needs_bytes:
            return RemoteLayer(d, entry.diff_id, store, source=REGISTRY_CACHE, content_key=key)
        path = store.cached(d)
        if _diff_id(path, d.media_type) != entry.diff_id:
            self._fail(ref, BaleError(f"layer {d.digest} does not have the diff_id it records"))
            return None
        layer = Layer(d, entry.diff_id, path, source=REGISTRY_CACHE, content_key=key)
        if self.local is not None:
            self.local.put(key, layer)
        return layer

    def fetch_records(self, diff_ids: Sequence[Digest]) -> None:
        """The file-hashes records of the hits among ``diff_ids`` into the local cache, for
        an SBOM about to be made (not when one was taken whole from a cache)."""
        with self.lock:  # held while fetching: another platform's SBOM may need it too
            for diff_id in diff_ids:
                found = self.pending.pop(diff_id, None)
                if found is not None and self.local is not None:
                    entry, ref = found
                    self._record(self._client(ref), ref, entry, self.local.root)

    def _record(
        self, client: RegistryClient, ref: Reference, entry: CacheEntry, root: Path
    ) -> None:
        """The hit's file-hashes record into the local cache, if to be had."""
        from builder.commands.filerecords import fetch_record, usable

        files = entry.files
        if files is None:
            return
        if not usable(files):
            self._once(
                ref,
                f"file-hashes record {files.digest} not used: {files.media_type}, "
                f"{files.size} bytes is not a record this bale reads",
            )
            return
        try:
            fetch_record(client, ref.repository, files, root, entry.diff_id)
        except (BaleError, OSError) as exc:
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            self._once(ref, f"file-hashes record {files.digest} not used: {first}")

    def _client(self, ref: Reference) -> RegistryClient:
        if self.clients is None:
            raise BaleError("internal: a registry cache without registry clients")
        return self.clients.get(ref.registry)

    def _fail(self, ref: Reference, exc: BaseException) -> None:
        """A cache that failed is not asked again; one warning line, the first time."""
        with self.lock:
            if ref.name in self.failed:
                return
            self.failed.add(ref.name)
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        self._once(ref, f"not used: {first}")

    def _once(self, ref: Reference, message: str) -> None:
        """At most one warning line per cache."""
        with self.lock:
            if ref.name in self.warned:
                return
            self.warned.add(ref.name)
        self.warn(f"warning: registry cache {ref}: {message}")


def _noted_key(noted: Mapping[str, Any] | None) -> str | None:
    key = noted.get("contentKey") if noted is not None else None
    return key if isinstance(key, str) and key else None


def _diff_id(path: Path, media_type: str) -> Digest:
    """The sha256 of a layer blob's uncompressed bytes."""
    hasher = hashlib.sha256()
    with open(path, "rb") as raw, decompressed(raw, layer_codec(media_type)) as stream:
        while chunk := stream.read(HASH_READ):
            hasher.update(chunk)
    return Digest("sha256", hasher.hexdigest())
