"""The ``docker://`` sink: push a built image to a registry.

Order: blobs (layers and configs, in parallel, each digest once), then the
manifests by digest, then the index by digest (each skipped when a HEAD finds
it), then referrers (builder/registry/referrers.py), and only then the tags, so a
tag never points at something incomplete. A blob the registry has is skipped
(HEAD); a blob known to live in another repository of the same registry (a
base layer pulled from there, or a blob bale pushed there before: see
locations.py) is mounted from it; anything else, or a refused mount, is
uploaded from its ``open()`` (a base layer from another registry streams
through the verifying blob cache).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from builder.errors import ImageError, RegistryError
from builder.model import INDEX_TYPES, MANIFEST_TYPES, Blob, Descriptor
from builder.reference import parse_reference
from builder.registry.locations import BlobLocations
from builder.registry.options import Clients
from builder.registry.referrers import push_referrers
from builder.registry.store import RegistryStore
from builder.spec.locations import Output
from builder.supply.attachment import Referrer, referrer_blobs

if TYPE_CHECKING:
    from builder.registry.client import RegistryClient

DEFAULT_UPLOADS = 4
MAX_MOUNT_TRIES = 3


class Sent(Enum):
    """What happened to one blob."""

    EXISTING = "existing"
    MOUNTED = "mounted"
    UPLOADED = "uploaded"


@dataclass(frozen=True, slots=True)
class PushReport:
    """The references written (``REPO:TAG@DIGEST``, or ``REPO@DIGEST`` untagged) and blob counts."""

    references: tuple[str, ...]
    uploaded: int
    mounted: int
    existing: int


def push(
    output: Output,
    blobs: Sequence[Blob],
    root: Descriptor,
    tags: Sequence[str],
    clients: Clients,
    jobs: int = 0,
    referrers: Sequence[Referrer] = (),
) -> PushReport:
    """Push ``root`` and ``blobs`` to ``output``'s repository, tagging it with ``tags``.

    ``referrers`` (signatures, SBOMs, attestations) follow their subjects and
    go before any tag moves.
    """
    ref = parse_reference(output.name)
    client = clients.get(ref.registry)
    repo = ref.repository
    kinds = MANIFEST_TYPES | INDEX_TYPES
    documents = [b for b in blobs if b.descriptor.media_type in kinds]
    data_blobs = [b for b in blobs if b.descriptor.media_type not in kinds]
    data_blobs += referrer_blobs(referrers, blobs, manifests=False)
    target = _Target(client, ref.registry, repo, clients.locations)
    try:
        with ThreadPoolExecutor(max_workers=jobs or DEFAULT_UPLOADS) as pool:
            sent = list(pool.map(target.send, data_blobs))
    finally:
        target.locations.save()
    # Manifests before the index that lists them: the index is the root, pushed last.
    documents.sort(key=lambda b: b.descriptor.media_type in INDEX_TYPES)
    for document in documents:
        d = document.descriptor
        if not client.manifest_exists(repo, d.digest):
            client.push_manifest(repo, str(d.digest), d.media_type, _read(document))
    push_referrers(client, repo, referrers)
    root_data = _read(_find(documents, root))
    for tag in tags:
        client.push_manifest(repo, tag, root.media_type, root_data)
    names = [f"{ref.name}:{tag}@{root.digest}" for tag in tags] or [f"{ref.name}@{root.digest}"]
    return PushReport(
        tuple(names), sent.count(Sent.UPLOADED), sent.count(Sent.MOUNTED), sent.count(Sent.EXISTING)
    )


@dataclass(frozen=True, slots=True)
class _Target:
    """The repository blobs go to, and the memory of where blobs were seen."""

    client: RegistryClient
    registry: str
    repo: str
    locations: BlobLocations

    def send(self, blob: Blob) -> Sent:
        sent = self._deliver(blob)
        self.locations.record(str(blob.descriptor.digest), self.registry, self.repo)
        return sent

    def _deliver(self, blob: Blob) -> Sent:
        digest = blob.descriptor.digest
        if self.client.blob_exists(self.repo, digest):
            return Sent.EXISTING
        for source in self._mount_sources(blob):
            if self._mount(blob, source):
                return Sent.MOUNTED
        self.client.push_blob(self.repo, blob.descriptor, blob.open)
        return Sent.UPLOADED

    def _mount_sources(self, blob: Blob) -> list[str]:
        """Other repositories of this registry that hold the blob, best first."""
        found = mount_source(blob)
        base = [found[1]] if found is not None and found[0] == self.registry else []
        known = self.locations.repositories(str(blob.descriptor.digest), self.registry)
        sources = [r for r in dict.fromkeys([*base, *known]) if r != self.repo]
        return sources[:MAX_MOUNT_TRIES]

    def _mount(self, blob: Blob, source: str) -> bool:
        """Mount from ``source``; a refusal (or an error) means upload instead."""
        try:
            return self.client.mount_blob(self.repo, blob.descriptor.digest, source)
        except RegistryError:
            return False


def mount_source(blob: Blob) -> tuple[str, str] | None:
    """(registry, repository) a blob can be mounted from: a layer of a registry base."""
    store = getattr(blob, "store", None)
    if isinstance(store, RegistryStore):
        return store.registry, store.repository
    return None


def _read(blob: Blob) -> bytes:
    with blob.open() as stream:
        return stream.read()


def _find(documents: Sequence[Blob], root: Descriptor) -> Blob:
    for document in documents:
        if document.descriptor.digest == root.digest:
            return document
    raise ImageError(f"internal: the root {root.digest} is not among the blobs to push")
