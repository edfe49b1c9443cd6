"""The referrers of a manifest in any image source: layout, archive or registry.

In an OCI layout they are the index.json entries whose manifest names the
digest as ``subject``. An oci-archive bale writes keeps them in ``blobs/``
without listing them (``podman load`` and skopeo refuse an index.json of more
than one manifest), so in both local kinds the artifact manifests stored
under ``blobs/`` are found by their ``subject`` too. On a registry, the
referrers API or its tag fallback answers (builder/registry/referrers.py).
A docker-archive holds none.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from builder.errors import BaleError
from builder.formats.archive import OciArchiveStore
from builder.formats.layout import LayoutStore
from builder.image.documents import MAX_DOCUMENT
from builder.image.store import Store, read_document
from builder.model import OCI_MANIFEST, Descriptor, Digest
from builder.registry.referrers import list_referrers
from builder.registry.store import RegistryStore

LocalStore = LayoutStore | OciArchiveStore


def referrers_of(store: Store, subject: Digest) -> list[Descriptor]:
    """Descriptors (with ``artifactType``) of every manifest whose subject is ``subject``."""
    if isinstance(store, RegistryStore):
        return list_referrers(store.client, store.repository, subject)
    if not isinstance(store, LocalStore):
        return []
    entries = store.index_entries()
    found = []
    for entry in entries:
        if entry.media_type == OCI_MANIFEST and entry.digest != subject:
            _, manifest = read_document(store, entry)
            if _names(manifest, subject):
                found.append(replace(entry, artifact_type=entry.artifact_type or _kind(manifest)))
    listed = {entry.digest for entry in entries} | {subject}
    for stored in store.stored_blobs():
        if stored.digest not in listed and stored.size <= MAX_DOCUMENT:
            unlisted = _unlisted(store, stored, subject)
            if unlisted is not None:
                found.append(unlisted)
    return found


def _unlisted(store: LocalStore, stored: Descriptor, subject: Digest) -> Descriptor | None:
    """A blob index.json does not list, as a referrer of ``subject`` when it is one."""
    with store.open(stored) as stream:
        if stream.read(1) != b"{":
            return None
    candidate = replace(stored, media_type=OCI_MANIFEST)
    try:
        _, manifest = read_document(store, candidate)
    except BaleError:
        return None  # a blob that is not a JSON object: some layer, never a manifest
    if manifest.get("mediaType") != OCI_MANIFEST or not _names(manifest, subject):
        return None
    annotations = manifest.get("annotations")
    if not isinstance(annotations, dict) or not all(
        isinstance(v, str) for v in annotations.values()
    ):
        annotations = {}
    return replace(candidate, annotations=annotations, artifact_type=_kind(manifest))


def _names(manifest: dict[str, Any], subject: Digest) -> bool:
    named = manifest.get("subject")
    return isinstance(named, dict) and named.get("digest") == str(subject)


def _kind(manifest: dict[str, Any]) -> str:
    """The artifact type, else the config's media type (as the referrers API reports it)."""
    config = manifest.get("config")
    fallback = config.get("mediaType") if isinstance(config, dict) else ""
    return str(manifest.get("artifactType") or fallback or "")
