"""``--cache-to``: after the outputs are written, merge this build's layers into each cache.

Each layer's blob is made present in the cache's repository first: already
there (HEAD), mounted from another repository of the same registry that has
it (the registry cache it came from, or this build's push), else uploaded;
then its file-hashes record (the SBOM's), when the build made or fetched one;
and each SBOM of the build under its memo key, so a build of the same image
takes it instead of making it again. A cache that cannot be written costs one
warning line; the build succeeds.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from builder.commands.layersource import (
    AnyLayer,
    ClientSource,
    LayerResolver,
    RegistryCaches,
    Warn,
)
from builder.errors import BaleError
from builder.model import Blob, Descriptor
from builder.reference import Reference, parse_reference
from builder.spec.locations import Output

if TYPE_CHECKING:
    from builder.registry.client import RegistryClient
    from builder.registry.layercache import CachedDocument
    from builder.supply.attachment import Attachment


def publish(
    resolver: LayerResolver,
    caches: RegistryCaches,
    clients: ClientSource,
    outputs: Sequence[Output],
    warn: Warn,
    cache_root: Path | None = None,
    documents: Mapping[str, Attachment] | None = None,
) -> None:
    """Write the layers the ``resolver`` found or built to every ``--cache-to`` cache, each
    with its file-hashes record when there is one (named by the cache a hit came from,
    or in the local cache, ``cache_root``), and ``documents`` (memo key → SBOM)."""
    from builder.registry.layercache import CacheEntry, write_cache

    now = int(time.time())
    pushed = [parse_reference(o.name) for o in outputs if o.transport == "docker"]
    for ref in caches.targets:
        try:
            client = clients.get(ref.registry)
            entries = {}
            for key, (layer, platform) in resolver.publish.items():
                _place(client, ref, layer, pushed)
                files = _record(client, ref, layer, cache_root, resolver.source_record(key))
                entries[key] = CacheEntry(layer.descriptor, layer.diff_id, platform, now, files)
            kept = _documents(client, ref, documents or {}, pushed, now)
            write_cache(client, ref, entries, caches.max_entries, kept)
        except (BaleError, OSError) as exc:
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            warn(f"warning: registry cache {ref}: not written: {first}")


def _documents(
    client: RegistryClient,
    ref: Reference,
    documents: Mapping[str, Attachment],
    pushed: Sequence[Reference],
    now: int,
) -> dict[str, CachedDocument]:
    """Each SBOM made present in the cache's repository (mounted from a push of this
    build when it can be), as the cache names it."""
    from builder.registry.layercache import CachedDocument

    kept = {}
    for key, attachment in documents.items():
        blob = attachment.blob
        _place(client, ref, blob, pushed)
        kept[key] = CachedDocument(blob.descriptor, now)
    return kept


def _record(
    client: RegistryClient,
    ref: Reference,
    layer: AnyLayer,
    cache_root: Path | None,
    source: tuple[Descriptor, Reference] | None,
) -> Descriptor | None:
    """The layer's file-hashes record made present in the cache's repository: the one
    the ``source`` cache of a hit names, where it is (HEAD) or mounted from there (no
    byte moves: a hit whose SBOM was taken whole never fetched it), else the local one."""
    from builder.commands.filerecords import publish_record, usable

    repo = ref.repository
    if source is not None and usable(source[0]):
        files, home = source
        if client.blob_exists(repo, files.digest):
            return files
        same = home.registry == ref.registry and home.repository != repo
        if same and client.mount_blob(repo, files.digest, home.repository):
            return files
    if cache_root is None:
        return None
    return publish_record(client, repo, cache_root, layer.diff_id)


def _place(
    client: RegistryClient, ref: Reference, blob: AnyLayer | Blob, pushed: Sequence[Reference]
) -> None:
    """Make a layer's or an SBOM's blob present in the cache's repository, moving as few
    bytes as can be."""
    repo, digest = ref.repository, blob.descriptor.digest
    if client.blob_exists(repo, digest):
        return
    store = getattr(blob, "store", None)
    homes = [(store.registry, store.repository)] if store is not None else []
    homes += [(p.registry, p.repository) for p in pushed]
    for registry, home in homes:
        if registry == ref.registry and home != repo and client.mount_blob(repo, digest, home):
            return
    client.push_blob(repo, blob.descriptor, blob.open)
