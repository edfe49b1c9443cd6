"""The referrers a local image source lists beside its images (OCI layout, oci-archive).

An image layout names each artifact manifest in index.json without a tag;
the ones whose ``subject`` is a given manifest are that image's referrers
(listed by ``formats.referrers``, which also reads a registry's; a registry
source's are not copied here).
"""

from __future__ import annotations

from builder.formats.referrers import referrers_of
from builder.image.assemble import JsonBlob
from builder.image.store import Store, read_document
from builder.model import Descriptor, VerifiedReader
from builder.registry.store import RegistryStore
from builder.supply.attachment import Referrer


def local_referrers(store: Store, subject: Descriptor) -> tuple[Referrer, ...]:
    """The artifacts ``store`` lists whose subject is ``subject``, with their blobs."""
    if isinstance(store, RegistryStore):
        return ()
    found = []
    for entry in referrers_of(store, subject.digest):
        data, document = read_document(store, entry)
        descriptors = [document["config"], *(document.get("layers") or [])]
        blobs = tuple(_blob(store, Descriptor.from_json(item)) for item in descriptors)
        manifest = JsonBlob(Descriptor(entry.media_type, entry.digest, entry.size), data)
        found.append(Referrer(subject, entry.artifact_type, manifest, blobs))
    return tuple(found)


def _blob(store: Store, descriptor: Descriptor) -> JsonBlob:
    """A small artifact blob read whole and checked against its digest."""
    with store.open(descriptor) as stream:
        reader = VerifiedReader(stream, descriptor, store.name)
        data = reader.read(descriptor.size + 1)
        reader.finish()
    return JsonBlob(descriptor, data)
