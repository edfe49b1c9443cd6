"""The image signature in cosign's format, attached as an OCI 1.1 referrer.

Follows cosign 2.x (v2.2 and later) with ``--registry-referrers-mode=oci-1-1``:
an artifact manifest of type ``application/vnd.dev.cosign.artifact.sig.v1+json``
whose single layer is the "simple signing" payload
(``application/vnd.dev.cosign.simplesigning.v1+json``), with the base64
signature of exactly those payload bytes in the layer annotation
``dev.cosignproject.cosign/signature``. ``cosign verify --key`` with
``--experimental-oci11`` finds and checks it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from builder.image.assemble import JsonBlob
from builder.model import ANNOTATION_CREATED, OCI_MANIFEST, Descriptor, Digest, canonical_json
from builder.supply.attachment import EMPTY_BLOB, EMPTY_DESCRIPTOR, Referrer, subject_json
from builder.supply.sign import SigningKey, VerifyKey

COSIGN_SIGNATURE = "application/vnd.dev.cosign.artifact.sig.v1+json"
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
SIGNATURE_TYPE = "cosign container image signature"


@dataclass(frozen=True, slots=True)
class SimpleSigning:
    """What a simple-signing payload claims: this manifest digest, under this name."""

    digest: str
    reference: str


def simple_signing_payload(subject: Digest, reference: str) -> bytes:
    """The payload cosign signs for an image: its manifest digest and repository name."""
    return canonical_json(
        {
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": str(subject)},
                "type": SIGNATURE_TYPE,
            },
            "optional": {},
        }
    )


def parse_simple_signing(payload: bytes) -> SimpleSigning | None:
    """The claims of a simple-signing payload, or None when it is not one."""
    try:
        critical: Any = json.loads(payload)["critical"]
        if critical["type"] != SIGNATURE_TYPE:
            return None
        return SimpleSigning(
            str(critical["image"]["docker-manifest-digest"]),
            str(critical["identity"].get("docker-reference", "")),
        )
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None


def sign_manifest(key: SigningKey, subject: Descriptor, reference: str, created: str) -> Referrer:
    """The cosign signature referrer of the manifest ``subject``."""
    payload = simple_signing_payload(subject.digest, reference)
    signature = base64.b64encode(key.sign(payload)).decode()
    layer = Descriptor(
        SIMPLE_SIGNING,
        Digest.of(payload),
        len(payload),
        annotations={SIGNATURE_ANNOTATION: signature},
    )
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": COSIGN_SIGNATURE,
        "config": EMPTY_DESCRIPTOR.to_json() | {"data": "e30="},
        "layers": [layer.to_json()],
        "subject": subject_json(subject),
        "annotations": {ANNOTATION_CREATED: created},
    }
    manifest = JsonBlob.of(OCI_MANIFEST, document)
    return Referrer(subject, COSIGN_SIGNATURE, manifest, (EMPTY_BLOB, JsonBlob(layer, payload)))


def signature_of(layer: Descriptor) -> bytes | None:
    """The decoded signature a simple-signing layer carries, or None."""
    text = layer.annotations.get(SIGNATURE_ANNOTATION, "")
    try:
        return base64.b64decode(text, validate=True) if text else None
    except (ValueError, binascii.Error):
        return None


def signed_by(key: VerifyKey, layer: Descriptor, payload: bytes) -> bool:
    """Whether the layer's signature annotation is ``key``'s signature of ``payload``."""
    signature = signature_of(layer)
    return signature is not None and key.verify(payload, signature)
