"""The ``docker://`` sink: push a built image to a registry.

Order: blobs (layers and configs, in parallel, each digest once), then the
manifests by digest, then the index by digest (each skipped when a HEAD finds
it), and only then the tags, so a
tag never points at something incomplete. A blob the registry has is skipped
(HEAD); a base layer pulled from another repository of the same registry is
mounted; anything else is uploaded from its ``open()`` (a base layer from
another registry streams through the verifying blob cache).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from builder.errors import ImageError
from builder.model import INDEX_TYPES, MANIFEST_TYPES, Blob, Descriptor
from builder.reference import parse_reference
from builder.registry.options import Clients
from builder.registry.store import RegistryStore
from builder.spec.locations import Output

if TYPE_CHECKING:
    from builder.registry.client import RegistryClient

DEFAULT_UPLOADS = 4


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
) -> PushReport:
    """Push ``root`` and ``blobs`` to ``output``'s repository, tagging it with ``tags``."""
    ref = parse_reference(output.name)
    client = clients.get(ref.registry)
    repo = ref.repository
    kinds = MANIFEST_TYPES | INDEX_TYPES
    documents = [b for b in blobs if b.descriptor.media_type in kinds]
    data_blobs = [b for b in blobs if b.descriptor.media_type not in kinds]
    with ThreadPoolExecutor(max_workers=jobs or DEFAULT_UPLOADS) as pool:
        sent = list(pool.map(lambda b: _send_blob(client, ref.registry, repo, b), data_blobs))
    # Manifests before the index that lists them: the index is the root, pushed last.
    documents.sort(key=lambda b: b.descriptor.media_type in INDEX_TYPES)
    for document in documents:
        d = document.descriptor
        if not client.manifest_exists(repo, d.digest):
            client.push_manifest(repo, str(d.digest), d.media_type, _read(document))
    root_data = _read(_find(documents, root))
    for tag in tags:
        client.push_manifest(repo, tag, root.media_type, root_data)
    names = [f"{ref.name}:{tag}@{root.digest}" for tag in tags] or [f"{ref.name}@{root.digest}"]
    return PushReport(
        tuple(names), sent.count(Sent.UPLOADED), sent.count(Sent.MOUNTED), sent.count(Sent.EXISTING)
    )


def _send_blob(client: RegistryClient, registry: str, repo: str, blob: Blob) -> Sent:
    digest = blob.descriptor.digest
    if client.blob_exists(repo, digest):
        return Sent.EXISTING
    source = mount_source(blob)
    same_registry = source is not None and source[0] == registry and source[1] != repo
    if same_registry and source is not None and client.mount_blob(repo, digest, source[1]):
        return Sent.MOUNTED
    client.push_blob(repo, blob.descriptor, blob.open)
    return Sent.UPLOADED


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
