"""The referrers of a manifest in any image source: layout, archive or registry.

In an OCI layout or oci-archive they are the index.json entries whose
manifest names the digest as ``subject``; on a registry, the referrers API or
its tag fallback answers (builder/registry/referrers.py). A docker-archive
holds none.
"""

from __future__ import annotations

from dataclasses import replace

from builder.formats.archive import OciArchiveStore
from builder.formats.layout import LayoutStore
from builder.image.store import Store, read_document
from builder.model import OCI_MANIFEST, Descriptor, Digest
from builder.registry.referrers import list_referrers
from builder.registry.store import RegistryStore


def referrers_of(store: Store, subject: Digest) -> list[Descriptor]:
    """Descriptors (with ``artifactType``) of every manifest whose subject is ``subject``."""
    if isinstance(store, RegistryStore):
        return list_referrers(store.client, store.repository, subject)
    if not isinstance(store, LayoutStore | OciArchiveStore):
        return []
    found = []
    for entry in store.index_entries():
        if entry.media_type != OCI_MANIFEST or entry.digest == subject:
            continue
        _, manifest = read_document(store, entry)
        named = manifest.get("subject")
        if isinstance(named, dict) and named.get("digest") == str(subject):
            kind = manifest.get("artifactType") or (manifest.get("config") or {}).get("mediaType")
            found.append(replace(entry, artifact_type=entry.artifact_type or str(kind or "")))
    return found
