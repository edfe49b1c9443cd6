"""bale's layer cache kept in a registry: an OCI artifact mapping content keys to layers.

The artifact is an image manifest with ``artifactType`` = ``CACHE_TYPE``, the
empty config, and one blob of that media type: canonical JSON
``{"version": 1, "entries": {KEY: ENTRY}}``, where ENTRY is a layer
descriptor (``digest``, ``diffId``, ``size``, ``mediaType``), the
``platform`` it was built for, ``written`` (Unix seconds; the oldest go
first when the cache is over its limit) and, optionally, ``files``: the
descriptor of the layer's file-hashes record (the SBOM's, so a hit reads no
file; caches written before it stay valid). An optional ``"documents"`` maps
an SBOM's memo key (``supply.sbom.memo_key``: the image's manifest digest,
names and format, bale's version) to the descriptor of that SBOM, with its
``written``: an image whose every layer was a hit has the SBOM it had before,
byte for byte, so it is taken rather than made again. Every blob an entry or
document names is a blob of the cache's own repository, and the manifest
lists them all after the cache blob, so a registry's garbage collection
keeps them.

Writers merge with what the tag holds and check, just before moving the
tag, that it still points where they read it (else merge again); readers
accept several caches and merge them, so a CI matrix can also give each job
its own tag.
"""

from __future__ import annotations

import io
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from builder.errors import BaleError, RegistryError
from builder.image.documents import parse_json
from builder.layer.build import REGISTRY_CACHE
from builder.model import OCI_EMPTY, OCI_MANIFEST, Descriptor, Digest, canonical_json
from builder.reference import Reference

if TYPE_CHECKING:
    from builder.registry.client import RegistryClient
    from builder.registry.store import RegistryStore

CACHE_TYPE = "application/vnd.bale.layer-cache.v1+json"
CACHE_VERSION = 1
DEFAULT_MAX_ENTRIES = 1000
MAX_CACHE_BLOB = 16 << 20
# An SBOM of the standard library's 8,000 files is about 4.5 MB.
MAX_CACHED_DOCUMENT = 64 << 20
WRITE_ATTEMPTS = 10
# A competing writer's check-then-PUT takes two requests: milliseconds, not this.
SETTLE_S = 0.5
EMPTY = Descriptor(OCI_EMPTY, Digest.of(b"{}"), 2)


class CacheFormatError(RegistryError):
    """A tag that does not hold a bale layer cache: never overwritten."""


class DamagedCache(CacheFormatError):
    """A bale layer cache whose entry list cannot be read: a writer replaces it."""


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """One cached layer: its descriptor, diff_id, platform and when it was last written."""

    descriptor: Descriptor
    diff_id: Digest
    platform: str
    written: int
    files: Descriptor | None = None

    def to_json(self) -> dict[str, Any]:
        d = self.descriptor
        found = {
            "digest": str(d.digest),
            "diffId": str(self.diff_id),
            "size": d.size,
            "mediaType": d.media_type,
            "platform": self.platform,
            "written": self.written,
        }
        return found if self.files is None else {**found, "files": self.files.to_json()}

    @property
    def blobs(self) -> tuple[Descriptor, ...]:
        """The blobs of the cache's repository this entry needs kept."""
        return (self.descriptor,) if self.files is None else (self.descriptor, self.files)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> CacheEntry:
        size, written = obj["size"], obj.get("written", 0)
        if not isinstance(size, int) or size < 0 or not isinstance(written, int):
            raise ValueError("size and written must be whole numbers")
        media_type = obj["mediaType"]
        if not isinstance(media_type, str) or "layer" not in media_type:
            raise ValueError(f"mediaType {media_type!r} is not a layer media type")
        descriptor = Descriptor(media_type, Digest.parse(obj["digest"]), size)
        diff_id, platform = Digest.parse(obj["diffId"]), str(obj.get("platform", ""))
        return cls(descriptor, diff_id, platform, written, _files(obj.get("files")))


def _files(obj: object) -> Descriptor | None:
    """An entry's ``files`` descriptor; one that cannot be read is dropped, not an error
    (the record only saves time)."""
    if not isinstance(obj, Mapping):
        return None
    try:
        found = Descriptor.from_json(obj)
    except (BaleError, ValueError):
        return None
    return Descriptor(found.media_type, found.digest, found.size)


@dataclass(frozen=True, slots=True)
class CachedDocument:
    """An SBOM of an image built before: its blob in the cache's repository, and when
    it was last written (documents count against the limit apart from layers)."""

    descriptor: Descriptor
    written: int

    def to_json(self) -> dict[str, Any]:
        return {**self.descriptor.to_json(), "written": self.written}


def _documents(obj: object) -> dict[str, CachedDocument]:
    """The ``documents`` of a cache blob; one that cannot be read is dropped, not an
    error (a document only saves time)."""
    found = {}
    for key, value in obj.items() if isinstance(obj, Mapping) else ():
        try:
            d = Descriptor.from_json(value)
            written = value.get("written", 0)
        except (BaleError, ValueError, KeyError, TypeError, AttributeError):
            continue
        if isinstance(written, int) and 0 <= d.size <= MAX_CACHED_DOCUMENT:
            found[str(key)] = CachedDocument(Descriptor(d.media_type, d.digest, d.size), written)
    return found


@dataclass(frozen=True, slots=True)
class CacheArtifact:
    """The entries and documents a cache tag held when read, and the manifest digest
    it pointed at."""

    entries: Mapping[str, CacheEntry]
    digest: Digest | None = None
    documents: Mapping[str, CachedDocument] = field(default_factory=dict)


def read_cache(client: RegistryClient, ref: Reference) -> CacheArtifact:
    """The cache at ``ref`` (empty when the tag does not exist yet).

    CacheFormatError for anything that is not a bale cache; RegistryError
    (from the client) for a registry that is down or refuses us.
    """
    repo, tag = ref.repository, ref.manifest_ref
    digest = client.manifest_digest(repo, tag)
    if digest is None:
        return CacheArtifact({})
    manifest = client.get_manifest(repo, str(digest))
    blob = _cache_blob(manifest.data, ref)
    buffer = io.BytesIO()
    client.get_blob(repo, blob, buffer)
    entries, documents = parse_cache(buffer.getvalue(), ref)
    return CacheArtifact(entries, digest, documents)


def _cache_blob(data: bytes, ref: Reference) -> Descriptor:
    try:
        document = parse_json(data, str(ref))
        if document.get("artifactType") != CACHE_TYPE:
            raise ValueError(f"artifactType is {document.get('artifactType')!r}")
        blob = Descriptor.from_json(document["layers"][0])
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, BaleError) as exc:
        raise CacheFormatError(f"{ref} is not a bale layer cache ({exc})") from None
    if blob.media_type != CACHE_TYPE or blob.size > MAX_CACHE_BLOB:
        raise CacheFormatError(f"{ref}: its blob is not a bale cache of at most 16 MB")
    return blob


def parse_cache(
    data: bytes, ref: Reference
) -> tuple[dict[str, CacheEntry], dict[str, CachedDocument]]:
    """The entries and documents of a cache blob; DamagedCache names what is wrong."""
    try:
        document = parse_json(data, "the cache blob", MAX_CACHE_BLOB)
        if document.get("version") != CACHE_VERSION:
            raise ValueError(f"version {document.get('version')!r}, not {CACHE_VERSION}")
        items = document["entries"].items()
        entries = {str(key): CacheEntry.from_json(value) for key, value in items}
    except (ValueError, KeyError, TypeError, AttributeError, BaleError) as exc:
        raise DamagedCache(f"{ref}: the cache blob is damaged ({exc})") from None
    return entries, _documents(document.get("documents"))


Written = TypeVar("Written", CacheEntry, CachedDocument)


def merged(
    old: Mapping[str, Written], new: Mapping[str, Written], limit: int
) -> dict[str, Written]:
    """``new`` over ``old``, the most recently written ``limit`` kept (ties: by key).

    A new entry without a file-hashes record keeps the one the old entry of the
    same layer had (a build without the SBOM refreshes an entry, loses nothing).
    """
    together = {**old, **{key: _keeping(entry, old.get(key)) for key, entry in new.items()}}
    newest = sorted(together.items(), key=lambda item: (-item[1].written, item[0]))[:limit]
    return dict(sorted(newest))


def _keeping(new: Written, old: Written | None) -> Written:
    if not isinstance(new, CacheEntry) or not isinstance(old, CacheEntry):
        return new
    if new.files is not None or old.diff_id != new.diff_id:
        return new
    return replace(new, files=old.files)


def listed(
    entries: Mapping[str, CacheEntry], documents: Mapping[str, CachedDocument] | None = None
) -> list[Descriptor]:
    """Every blob the entries and documents name, once each, by digest: what the
    manifest lists."""
    found = {d.digest: d for entry in entries.values() for d in entry.blobs}
    found.update((doc.descriptor.digest, doc.descriptor) for doc in (documents or {}).values())
    return [Descriptor(found[k].media_type, k, found[k].size) for k in sorted(found)]


def encode(
    entries: Mapping[str, CacheEntry], documents: Mapping[str, CachedDocument] | None = None
) -> tuple[bytes, bytes]:
    """The cache blob and the artifact manifest that names it, then every blob it names.

    A cache without documents is written exactly as before they existed.
    """
    body: dict[str, Any] = {
        "version": CACHE_VERSION,
        "entries": {k: e.to_json() for k, e in entries.items()},
    }
    if documents:
        body["documents"] = {k: d.to_json() for k, d in documents.items()}
    blob = canonical_json(body)
    cache = Descriptor(CACHE_TYPE, Digest.of(blob), len(blob))
    layers = [cache, *(d for d in listed(entries, documents) if d.digest != cache.digest)]
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": CACHE_TYPE,
            "config": {**EMPTY.to_json(), "data": "e30="},
            "layers": [d.to_json() for d in layers],
        }
    )
    return blob, manifest


def write_cache(
    client: RegistryClient,
    ref: Reference,
    new: Mapping[str, CacheEntry],
    limit: int,
    documents: Mapping[str, CachedDocument] | None = None,
) -> int:
    """Merge ``new`` (and ``documents``) into the cache at ``ref``; returns how many
    entries it now holds.

    The tag moves only if it still points at what was read (checked just
    before the PUT), and is read back ``SETTLE_S`` after it: long enough for
    a writer that checked the tag just before our PUT to have made its own.
    When our entries are not in what the tag then holds, merge and write
    again (at most ``WRITE_ATTEMPTS`` times).
    """
    current = _replaceable(client, ref)
    for _ in range(WRITE_ATTEMPTS):
        repo = ref.repository
        _ensure(client, repo, EMPTY, lambda: io.BytesIO(b"{}"))
        listing = _Listing(
            merged(current.entries, new, limit),
            merged(current.documents, documents or {}, limit),
        )
        entries, manifest = _push_listing(client, repo, listing)
        if client.manifest_digest(repo, ref.manifest_ref) == current.digest:
            client.push_manifest(repo, ref.manifest_ref, OCI_MANIFEST, manifest)
            time.sleep(SETTLE_S)
            current = _replaceable(client, ref)
            if _holds(current.entries, new, entries):
                return len(current.entries)
        else:
            time.sleep(random.uniform(0, SETTLE_S))  # writers in step would collide again
            current = _replaceable(client, ref)
    raise RegistryError(
        f"cache {ref}: other writers moved the tag {WRITE_ATTEMPTS} times while this build "
        "wrote it; give each concurrent job its own --cache-to tag (docs/ci.md)"
    )


@dataclass(frozen=True, slots=True)
class _Listing:
    """What one cache manifest holds."""

    entries: Mapping[str, CacheEntry]
    documents: Mapping[str, CachedDocument]


def _push_listing(
    client: RegistryClient, repo: str, listing: _Listing
) -> tuple[Mapping[str, CacheEntry], bytes]:
    """Push the cache blob and its manifest by digest; the entries it holds and the manifest.

    A registry refuses a manifest that lists a blob it lacks (the distribution
    spec's MANIFEST_BLOB_UNKNOWN): one deleted (garbage collection, retention
    rules) since an older entry was written. Then every listed blob is
    checked, the entries and documents whose blob is gone dropped (a record
    that is gone is only unnamed), and the rest pushed, once more even when
    nothing was dropped (a blob another writer was linking into the
    repository just then).
    """
    try:
        return listing.entries, _push_manifest(client, repo, listing)
    except RegistryError as exc:
        if "BLOB_UNKNOWN" not in str(exc).upper():
            raise
        blobs = listed(listing.entries, listing.documents)
        present = {d.digest for d in blobs if client.blob_exists(repo, d.digest)}
        kept = {k: e for k, e in listing.entries.items() if e.descriptor.digest in present}
        kept = {
            k: e if e.files is None or e.files.digest in present else replace(e, files=None)
            for k, e in kept.items()
        }
        docs = {k: d for k, d in listing.documents.items() if d.descriptor.digest in present}
        return kept, _push_manifest(client, repo, _Listing(kept, docs))


def _push_manifest(client: RegistryClient, repo: str, listing: _Listing) -> bytes:
    blob, manifest = encode(listing.entries, listing.documents)
    _ensure(
        client, repo, Descriptor(CACHE_TYPE, Digest.of(blob), len(blob)), partial(io.BytesIO, blob)
    )
    client.push_manifest(repo, str(Digest.of(manifest)), OCI_MANIFEST, manifest)
    return manifest


def _replaceable(client: RegistryClient, ref: Reference) -> CacheArtifact:
    """What the tag holds; a damaged bale cache counts as empty, so it gets replaced."""
    try:
        return read_cache(client, ref)
    except DamagedCache:
        return CacheArtifact({}, client.manifest_digest(ref.repository, ref.manifest_ref), {})


def _holds(
    found: Mapping[str, CacheEntry], new: Mapping[str, CacheEntry], ours: Mapping[str, CacheEntry]
) -> bool:
    """Whether every new entry that survived the limit is in what the tag now holds."""
    return all(key in found for key in new if key in ours)


def _ensure(
    client: RegistryClient, repo: str, descriptor: Descriptor, opener: Callable[[], BinaryIO]
) -> None:
    if not client.blob_exists(repo, descriptor.digest):
        client.push_blob(repo, descriptor, opener)


@dataclass(frozen=True, slots=True)
class RemoteLayer:
    """A layer found in a registry cache and not downloaded: a push uses it where it is
    (HEAD, or a mount from the cache's repository); ``open`` downloads and verifies it."""

    descriptor: Descriptor
    diff_id: Digest
    store: RegistryStore
    created_by: str = ""
    source: str = REGISTRY_CACHE
    content_key: str = ""

    @property
    def verified_file(self) -> None:
        """Not downloaded: a layout or archive gets it through ``open``, checked as it copies."""
        return None

    def open(self) -> BinaryIO:
        return open(self.store.cached(self.descriptor), "rb")
