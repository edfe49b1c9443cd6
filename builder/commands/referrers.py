"""The referrers a source lists for an image, with their blobs, ready to be copied.

``formats.referrers`` finds them: index.json entries and unlisted artifact
manifests of a layout or oci-archive, the referrers API or its tag on a
registry. Each is copied whole: its manifest (read and checked here) and the
blobs it names (streamed from the source and checked as an output copies
them, so a large SBOM is never held in memory).
"""

from __future__ import annotations

from builder.formats.referrers import referrers_of
from builder.image.assemble import JsonBlob
from builder.image.store import Store, StoreBlob, read_document
from builder.locking import Note
from builder.model import OCI_MANIFEST, Blob, Descriptor
from builder.registry.store import RegistryStore
from builder.supply.attachment import Referrer


def source_referrers(
    store: Store, subject: Descriptor, note: Note | None = None
) -> tuple[Referrer, ...]:
    """The artifacts ``store`` lists whose subject is ``subject``, with their blobs.

    A referrer that is not an image manifest (an index, say) is not copied,
    nor one a registry's referrers tag lists but the registry no longer holds
    (another tool deleted it); ``note`` hears of each one left out.
    """
    found = []
    for entry in referrers_of(store, subject.digest):
        problem = _uncopied(store, entry)
        if problem:
            if note is not None:
                note(
                    f"note: {store.name}: the referrer {entry.digest} of {subject.digest} {problem}"
                )
            continue
        data, document = read_document(store, entry)
        named = [document.get("config"), *(document.get("layers") or [])]
        blobs: tuple[Blob, ...] = tuple(
            StoreBlob(Descriptor.from_json(item), store) for item in named if item is not None
        )
        manifest = JsonBlob(Descriptor(entry.media_type, entry.digest, entry.size), data)
        found.append(Referrer(subject, entry.artifact_type, manifest, blobs))
    return tuple(found)


def _uncopied(store: Store, entry: Descriptor) -> str:
    """Why ``entry`` is not copied, or "" when it is."""
    if entry.media_type != OCI_MANIFEST:
        kind = entry.media_type or "document of no media type"
        return f"is a {kind}, not an image manifest; it is not copied"
    registry = store if isinstance(store, RegistryStore) else None
    if registry and not registry.client.manifest_exists(registry.repository, entry.digest):
        return "is listed but not in the repository (deleted?); it is not copied"
    return ""
