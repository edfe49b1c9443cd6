"""The artifact manifest of a referrer: OCI 1.1 shape, judged by the OCI schemas."""

from __future__ import annotations

import base64
import hashlib
import json

from builder.model import OCI_MANIFEST, Descriptor, Digest, Platform
from builder.supply.attachment import Attachment, artifact_manifest, attach
from tests.helpers import validate

SUBJECT = Descriptor(OCI_MANIFEST, Digest.of(b"image"), 5, platform=Platform.parse("linux/amd64"))
SBOM = Attachment(
    "application/spdx+json", "application/spdx+json", b'{"spdxVersion":"SPDX-2.3"}', {"k": "v"}
)


def test_artifact_manifest_is_a_valid_oci_11_manifest() -> None:
    blob = artifact_manifest(SBOM, SUBJECT, "2024-01-01T00:00:00Z")
    document = json.loads(blob.data)
    validate(OCI_MANIFEST, document)
    assert document["artifactType"] == "application/spdx+json"
    assert document["subject"] == {
        "mediaType": OCI_MANIFEST,
        "digest": "sha256:" + hashlib.sha256(b"image").hexdigest(),
        "size": 5,
    }
    config = document["config"]
    assert config["mediaType"] == "application/vnd.oci.empty.v1+json"
    assert base64.b64decode(config["data"]) == b"{}"
    assert config["digest"] == "sha256:" + hashlib.sha256(b"{}").hexdigest()
    (layer,) = document["layers"]
    assert layer["digest"] == "sha256:" + hashlib.sha256(SBOM.payload).hexdigest()
    assert layer["size"] == len(SBOM.payload)
    assert document["annotations"] == {
        "org.opencontainers.image.created": "2024-01-01T00:00:00Z",
        "k": "v",
    }
    assert blob.descriptor.digest == Digest.of(blob.data)


def test_same_inputs_give_same_bytes_and_other_subject_other_digest() -> None:
    first = artifact_manifest(SBOM, SUBJECT, "2024-01-01T00:00:00Z")
    assert first == artifact_manifest(SBOM, SUBJECT, "2024-01-01T00:00:00Z")
    other = Descriptor(OCI_MANIFEST, Digest.of(b"other"), 5)
    assert artifact_manifest(SBOM, other, "2024-01-01T00:00:00Z") != first


def test_referrer_carries_its_blobs_and_a_typed_descriptor() -> None:
    referrer = attach(SBOM, SUBJECT, "2024-01-01T00:00:00Z")
    for blob in referrer.blobs:
        assert blob.descriptor.digest == Digest.of(blob.data)
    described = referrer.descriptor.to_json()
    assert described["artifactType"] == "application/spdx+json"
    assert described["digest"] == str(referrer.manifest.descriptor.digest)
    assert described["annotations"]["k"] == "v"
    assert Descriptor.from_json(described) == referrer.descriptor
