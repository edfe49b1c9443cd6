"""One referrer artifact and its OCI 1.1 artifact manifest.

An attachment (an SBOM, an attestation, a signature) is a payload with an
artifact type; its manifest names the image it describes as ``subject``, uses
the empty descriptor as config and carries the payload as its only layer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from builder.image.assemble import JsonBlob
from builder.model import ANNOTATION_CREATED, OCI_EMPTY, OCI_MANIFEST, Blob, Descriptor, Digest

EMPTY_DATA = b"{}"
EMPTY_DESCRIPTOR = Descriptor(OCI_EMPTY, Digest.of(EMPTY_DATA), len(EMPTY_DATA))
EMPTY_BLOB = JsonBlob(EMPTY_DESCRIPTOR, EMPTY_DATA)
_EMPTY_DATA_BASE64 = "e30="


@dataclass(frozen=True, slots=True)
class Attachment:
    """A referrer artifact before it has a subject: type, payload and annotations."""

    artifact_type: str
    media_type: str
    payload: bytes
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def blob(self) -> JsonBlob:
        """The payload as a blob with its descriptor (the manifest's one layer)."""
        descriptor = Descriptor(self.media_type, Digest.of(self.payload), len(self.payload))
        return JsonBlob(descriptor, self.payload)


@dataclass(frozen=True, slots=True)
class Referrer:
    """An attachment made concrete for one subject: its manifest and every blob it names."""

    subject: Descriptor
    artifact_type: str
    manifest: JsonBlob
    blobs: tuple[Blob, ...]

    @property
    def descriptor(self) -> Descriptor:
        """The manifest's descriptor with ``artifactType`` and its annotations.

        This is how an image layout's index.json and a referrers list name it.
        """
        plain = self.manifest.descriptor
        annotations = json.loads(self.manifest.data).get("annotations", {})
        return Descriptor(
            plain.media_type,
            plain.digest,
            plain.size,
            annotations=annotations,
            artifact_type=self.artifact_type,
        )


def subject_json(subject: Descriptor) -> dict[str, Any]:
    """A subject descriptor: media type, digest and size only (no platform)."""
    return {"mediaType": subject.media_type, "digest": str(subject.digest), "size": subject.size}


def artifact_manifest(attachment: Attachment, subject: Descriptor, created: str) -> JsonBlob:
    """The OCI 1.1 artifact manifest of ``attachment`` for ``subject``.

    ``created`` is an RFC 3339 time (the image's own), so the bytes depend only
    on the inputs and the same build gives the same digest.
    """
    empty = EMPTY_DESCRIPTOR.to_json() | {"data": _EMPTY_DATA_BASE64}
    annotations = {ANNOTATION_CREATED: created, **attachment.annotations}
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": attachment.artifact_type,
        "config": empty,
        "layers": [attachment.blob.descriptor.to_json()],
        "subject": subject_json(subject),
        "annotations": annotations,
    }
    return JsonBlob.of(OCI_MANIFEST, document)


def attach(attachment: Attachment, subject: Descriptor, created: str) -> Referrer:
    """The referrer of ``attachment`` for ``subject``, with its empty config and payload blobs."""
    manifest = artifact_manifest(attachment, subject, created)
    return Referrer(subject, attachment.artifact_type, manifest, (EMPTY_BLOB, attachment.blob))


def referrer_blobs(
    referrers: Sequence[Referrer], present: Sequence[Blob] = (), manifests: bool = True
) -> list[Blob]:
    """The referrers' blobs (and, with ``manifests``, their manifests) not in ``present``."""
    known = {b.descriptor.digest for b in present}
    found: list[Blob] = []
    for referrer in referrers:
        blobs: list[Blob] = [*referrer.blobs, referrer.manifest] if manifests else [*referrer.blobs]
        for blob in blobs:
            if blob.descriptor.digest not in known:
                known.add(blob.descriptor.digest)
                found.append(blob)
    return found
